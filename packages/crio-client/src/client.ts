// The CRI client: RuntimeService and ImageService (runtime.v1) over one gRPC connection.
import { GrpcChannel, type ServiceClient } from "@berth/grpc";
import { ImageServiceDefinition, RuntimeServiceDefinition } from "./generated/runtime/v1/api.js";

/** Where crictl and the kubelet look, in order: CRI-O first, then containerd, then cri-dockerd. */
export const DEFAULT_CRI_ENDPOINTS = [
  "unix:///var/run/crio/crio.sock",
  "unix:///run/containerd/containerd.sock",
  "unix:///var/run/cri-dockerd.sock",
] as const;

export interface CriClientOptions {
  /** unix:///path (CRI's usual form), a socket path, or host:port. */
  endpoint: string;
  /** Separate endpoint for ImageService (crictl's IMAGE_SERVICE_ENDPOINT); defaults to `endpoint`. */
  imageEndpoint?: string;
  maxMessageBytes?: number;
}

export class CriClient {
  readonly endpoint: string;
  readonly channel: GrpcChannel;
  readonly imageChannel: GrpcChannel;
  readonly runtime: ServiceClient<typeof RuntimeServiceDefinition>;
  readonly image: ServiceClient<typeof ImageServiceDefinition>;

  constructor(options: CriClientOptions) {
    this.endpoint = options.endpoint;
    const channelOptions = {
      backend: "cri",
      ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
    };
    this.channel = new GrpcChannel({ address: options.endpoint, ...channelOptions });
    this.imageChannel =
      options.imageEndpoint && options.imageEndpoint !== options.endpoint
        ? new GrpcChannel({ address: options.imageEndpoint, ...channelOptions })
        : this.channel;
    this.runtime = this.channel.service(RuntimeServiceDefinition);
    this.image = this.imageChannel.service(ImageServiceDefinition);
  }

  /** A client for CONTAINER_RUNTIME_ENDPOINT (and IMAGE_SERVICE_ENDPOINT), else CRI-O's socket. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): CriClient {
    const endpoint = env.CONTAINER_RUNTIME_ENDPOINT || DEFAULT_CRI_ENDPOINTS[0];
    return new CriClient({
      endpoint,
      ...(env.IMAGE_SERVICE_ENDPOINT ? { imageEndpoint: env.IMAGE_SERVICE_ENDPOINT } : {}),
    });
  }

  close(): void {
    this.channel.close();
    if (this.imageChannel !== this.channel) this.imageChannel.close();
  }
}
