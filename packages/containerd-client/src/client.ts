// The containerd client: one gRPC connection, a typed client per service, and the namespace and lease
// sent as metadata on every call (containerd scopes nearly everything by them).
import { GrpcChannel, type ServiceClient } from "@berth/grpc";
import { NotFoundError } from "@berth/runtime-core";
import { DEFAULT_CONTAINERD_ADDRESS, DEFAULT_NAMESPACE } from "./defaults.js";
import { ContainersDefinition } from "./generated/github.com/containerd/containerd/api/services/containers/v1/containers.js";
import { ContentDefinition } from "./generated/github.com/containerd/containerd/api/services/content/v1/content.js";
import { DiffDefinition } from "./generated/github.com/containerd/containerd/api/services/diff/v1/diff.js";
import { EventsDefinition } from "./generated/github.com/containerd/containerd/api/services/events/v1/events.js";
import { ImagesDefinition } from "./generated/github.com/containerd/containerd/api/services/images/v1/images.js";
import { IntrospectionDefinition } from "./generated/github.com/containerd/containerd/api/services/introspection/v1/introspection.js";
import { LeasesDefinition } from "./generated/github.com/containerd/containerd/api/services/leases/v1/leases.js";
import { NamespacesDefinition } from "./generated/github.com/containerd/containerd/api/services/namespaces/v1/namespace.js";
import {
  ControllerDefinition,
  StoreDefinition,
} from "./generated/github.com/containerd/containerd/api/services/sandbox/v1/sandbox.js";
import { SnapshotsDefinition } from "./generated/github.com/containerd/containerd/api/services/snapshots/v1/snapshots.js";
import { StreamingDefinition } from "./generated/github.com/containerd/containerd/api/services/streaming/v1/streaming.js";
import { TasksDefinition } from "./generated/github.com/containerd/containerd/api/services/tasks/v1/tasks.js";
import { TransferDefinition } from "./generated/github.com/containerd/containerd/api/services/transfer/v1/transfer.js";
import { VersionDefinition } from "./generated/github.com/containerd/containerd/api/services/version/v1/version.js";

export { DEFAULT_CONTAINERD_ADDRESS, DEFAULT_NAMESPACE };
/** The metadata keys containerd reads. */
export const NAMESPACE_HEADER = "containerd-namespace";
/** The metadata key of the lease that holds what a call creates. */
export const LEASE_HEADER = "containerd-lease";

/** The deadline of a containerd call that sets none, in milliseconds (as the CRI client's default). */
export const DEFAULT_CONTAINERD_TIMEOUT_MS = 2 * 60_000;

/**
 * Unary RPCs that last as long as the work they wait for, which no fixed deadline fits: a task's or a
 * sandbox's wait, a daemon-side pull (Transfer), a layer's unpack or diff, a checkpoint. Streams (events,
 * content reads and writes) have no default deadline either.
 */
const UNTIMED = ["wait", "transfer", "apply", "diff", "checkpoint"] as const;

/** How a ContainerdClient connects. Every field is optional. */
export interface ContainerdClientOptions {
  /** Socket path or unix:// address (default /run/containerd/containerd.sock). */
  address?: string;
  /** Namespace for every call (default "default"). */
  namespace?: string;
  /** Lease id sent with every call, so what the calls create is held by that lease. */
  lease?: string;
  /** Largest gRPC message (default 16 MiB, as containerd's own client). */
  maxMessageBytes?: number;
  /**
   * Deadline in milliseconds of a unary call that sets no `timeout` (default 2 minutes; a call past it
   * fails with a TimeoutError). Waits, Transfer, Diff.Apply/Diff and checkpoints get none, nor do streams.
   */
  defaultTimeout?: number;
  /**
   * Send Content.Write (every byte a pull or import stores) over node:http2 directly rather than through
   * grpc-js, which copies each outgoing message once more (default true; see @berth/grpc's
   * `directStreams`).
   */
  directStreams?: boolean;
}

/** Services present on containerd 1.6 and later. transfer, streaming and the sandbox services exist
 *  from 2.0 and answer UNIMPLEMENTED (an UnsupportedError) on 1.6. */
export class ContainerdClient {
  /** The socket path or address. */
  readonly address: string;
  /** The namespace every call is made in. */
  readonly namespace: string;
  /** The lease every call carries, when one was given. */
  readonly lease: string | undefined;
  /** The gRPC channel the service clients share. */
  readonly channel: GrpcChannel;
  /** The deadline of unary calls that set none, in milliseconds. */
  readonly defaultTimeout: number;

  /** Containers: container records (metadata, spec, snapshot, runtime). */
  readonly containers: ServiceClient<typeof ContainersDefinition>;
  /** Content: the content store (blobs by digest: read, write, info, status). */
  readonly content: ServiceClient<typeof ContentDefinition>;
  /** Diff: apply and create layer diffs on snapshots. */
  readonly diff: ServiceClient<typeof DiffDefinition>;
  /** Events: publish to and subscribe to containerd's event stream. */
  readonly events: ServiceClient<typeof EventsDefinition>;
  /** Images: image records (name to target descriptor). */
  readonly images: ServiceClient<typeof ImagesDefinition>;
  /** Introspection: plugins and server info. */
  readonly introspection: ServiceClient<typeof IntrospectionDefinition>;
  /** Leases: hold resources against garbage collection. */
  readonly leases: ServiceClient<typeof LeasesDefinition>;
  /** Namespaces: create, list, update and delete namespaces. */
  readonly namespaces: ServiceClient<typeof NamespacesDefinition>;
  /** Snapshots: prepare, commit, mount and remove snapshots. */
  readonly snapshots: ServiceClient<typeof SnapshotsDefinition>;
  /** Tasks: running processes of containers (create, start, exec, kill, wait, metrics). */
  readonly tasks: ServiceClient<typeof TasksDefinition>;
  /** Version: the daemon's version. */
  readonly version: ServiceClient<typeof VersionDefinition>;
  /** Transfer (containerd 2.0+): pulls, pushes, imports and exports done by the daemon. */
  readonly transfer: ServiceClient<typeof TransferDefinition>;
  /** Streaming (containerd 2.0+): the streams a transfer reads from and writes to. */
  readonly streaming: ServiceClient<typeof StreamingDefinition>;
  /** Sandbox store (containerd 2.0+): sandbox records. */
  readonly sandboxStore: ServiceClient<typeof StoreDefinition>;
  /** Sandbox controller (containerd 2.0+): create, start, stop sandboxes. */
  readonly sandboxController: ServiceClient<typeof ControllerDefinition>;

  constructor(options: ContainerdClientOptions = {}, channel?: GrpcChannel) {
    this.address = options.address ?? DEFAULT_CONTAINERD_ADDRESS;
    this.namespace = options.namespace ?? DEFAULT_NAMESPACE;
    this.lease = options.lease;
    this.defaultTimeout = options.defaultTimeout ?? DEFAULT_CONTAINERD_TIMEOUT_MS;
    this.channel =
      channel ??
      new GrpcChannel({
        address: this.address,
        backend: "containerd",
        directStreams: options.directStreams ?? true,
        ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
      });
    const metadata: Record<string, string> = { [NAMESPACE_HEADER]: this.namespace };
    if (this.lease) metadata[LEASE_HEADER] = this.lease;
    const service = { metadata, timeout: this.defaultTimeout, untimed: UNTIMED };
    const svc = <D extends Parameters<GrpcChannel["service"]>[0]>(d: D) => this.channel.service(d, service);
    this.containers = svc(ContainersDefinition);
    this.content = svc(ContentDefinition);
    this.diff = svc(DiffDefinition);
    this.events = svc(EventsDefinition);
    this.images = svc(ImagesDefinition);
    this.introspection = svc(IntrospectionDefinition);
    this.leases = svc(LeasesDefinition);
    this.namespaces = svc(NamespacesDefinition);
    this.snapshots = svc(SnapshotsDefinition);
    this.tasks = svc(TasksDefinition);
    this.version = svc(VersionDefinition);
    this.transfer = svc(TransferDefinition);
    this.streaming = svc(StreamingDefinition);
    this.sandboxStore = svc(StoreDefinition);
    this.sandboxController = svc(ControllerDefinition);
  }

  /** A client from CONTAINERD_ADDRESS and CONTAINERD_NAMESPACE, else the defaults. */
  static fromEnv(
    env: NodeJS.ProcessEnv = process.env,
    options: ContainerdClientOptions = {},
  ): ContainerdClient {
    return new ContainerdClient({
      ...options,
      address: options.address ?? (env.CONTAINERD_ADDRESS || DEFAULT_CONTAINERD_ADDRESS),
      namespace: options.namespace ?? (env.CONTAINERD_NAMESPACE || DEFAULT_NAMESPACE),
    });
  }

  /** The same connection, scoped to another namespace. */
  withNamespace(namespace: string): ContainerdClient {
    return new ContainerdClient({ ...this.#options(), namespace }, this.channel);
  }

  /** The same connection and namespace, with every call made under a lease. */
  withLease(lease: string | undefined): ContainerdClient {
    const { lease: _, ...rest } = this.#options();
    return new ContainerdClient({ ...rest, ...(lease ? { lease } : {}) }, this.channel);
  }

  /** The options this client was made with, for one that shares its channel. */
  #options(): ContainerdClientOptions {
    return {
      address: this.address,
      namespace: this.namespace,
      defaultTimeout: this.defaultTimeout,
      ...(this.lease ? { lease: this.lease } : {}),
    };
  }

  /** Whether this client's namespace exists. (Namespaces.Get answers for any name on containerd 1.6, so
   *  this lists them.) */
  async namespaceExists(): Promise<boolean> {
    const { namespaces } = await this.namespaces.list({});
    return namespaces.some((n) => n.name === this.namespace);
  }

  /** Throw NotFoundError unless the namespace exists: reads in a missing namespace answer "empty" or
   *  "container not found", and writes create it silently. */
  async requireNamespace(): Promise<void> {
    if (!(await this.namespaceExists())) {
      throw new NotFoundError(`containerd namespace ${JSON.stringify(this.namespace)} not found`, {
        operation: "Namespaces.List",
        backend: "containerd",
      });
    }
  }

  /** Close the connection (shared by clients made with withNamespace/withLease). */
  close(): void {
    this.channel.close();
  }
}
