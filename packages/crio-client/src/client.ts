// The CRI client: RuntimeService and ImageService (runtime.v1) over one gRPC connection, with typed verbs
// named as the CRI names them and the deadlines the kubelet's remote client uses.
import { stat } from "node:fs/promises";
import {
  type DeepPartial,
  type GrpcCallOptions,
  GrpcChannel,
  type ServerStream,
  type ServiceClient,
} from "@berth/grpc";
import {
  ApiVersionError,
  type BerthError,
  credentialsForImage,
  isBerthError,
  parseImageRef,
  type RegistryCredentials,
  type ResolveCredentialsOptions,
  resolveCredentials,
  UnavailableError,
  UnsupportedError,
} from "@berth/runtime-core";
import { type CriLogEntry, type ReadCriLogsOptions, readCriLogs } from "@berth/runtime-core/internal";
import {
  type EndpointCandidate,
  endpointCandidates,
  type ResolveEndpointOptions,
  unixSocketPath,
} from "./endpoint.js";
import { refineCriError } from "./errors.js";
import { openStreamSession, type StreamSession } from "./exec.js";
import {
  type AuthConfig,
  type Container,
  type ContainerConfig,
  type ContainerEventResponse,
  type ContainerFilter,
  type ContainerStats,
  type ContainerStatsFilter,
  type ContainerStatusResponse,
  type ExecSyncResponse,
  type Image,
  type ImageFilter,
  type ImageFsInfoResponse,
  ImageServiceDefinition,
  type ImageStatusResponse,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  type PodSandboxStatusResponse,
  type RuntimeConfigResponse,
  RuntimeServiceDefinition,
  type StatusResponse,
  VersionRequest,
  type VersionResponse,
  VersionResponse as VersionResponseType,
} from "./generated/runtime/v1/api.js";
import {
  type ListenOptions,
  listenPortForward,
  openPortForward,
  type PortForwardListener,
  type PortForwardStream,
} from "./portforward.js";
import type { StreamTransportOption } from "./transport.js";

export { DEFAULT_CRI_ENDPOINTS } from "./endpoint.js";

/** The kubelet's remote runtime client gives every call 2 minutes (its --runtime-request-timeout). */
export const DEFAULT_CRI_TIMEOUT_MS = 2 * 60_000;
/** How long past an ExecSync's own timeout the client waits before giving up on a hung runtime. */
export const DEFAULT_EXEC_SYNC_MARGIN_MS = 2_000;
/** How long `connect()` waits for each endpoint to answer Version. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000;

/** How a CriClient connects. Only `endpoint` is required. */
export interface CriClientOptions {
  /** unix:///path (CRI's usual form), a socket path, or host:port. */
  endpoint: string;
  /** Separate endpoint for ImageService (crictl's IMAGE_SERVICE_ENDPOINT); defaults to `endpoint`. */
  imageEndpoint?: string;
  /** Largest gRPC message sent or received, in bytes (default 16 MiB). */
  maxMessageBytes?: number;
  /** Deadline for calls that do not set their own (default 2 minutes; image pulls have none). */
  defaultTimeout?: number;
  /**
   * Hosts besides loopback that the runtime's streaming URLs (exec, attach, port-forward) may name; the
   * host of a TCP `endpoint` is allowed too. Any other URL is refused with a ProtocolError.
   */
  streamingHosts?: string[];
}

/** Options of CriClient.connect(). */
export interface CriConnectOptions extends Omit<ResolveEndpointOptions, "endpoint"> {
  /** The endpoint to use; when unset, the environment's, crictl.yaml's, then the default sockets. */
  endpoint?: string;
  /** Largest gRPC message sent or received, in bytes (default 16 MiB). */
  maxMessageBytes?: number;
  /** Per-endpoint probe deadline; default crictl.yaml's timeout, else 5 s. */
  probeTimeout?: number;
  /** Cancels the search: an AbortedError once the signal fires. */
  signal?: AbortSignal;
}

/** Options of runPodSandbox(). */
export interface RunPodSandboxOptions extends GrpcCallOptions {
  /** RuntimeClass handler ("runc", "kata"...); empty selects the runtime's default. */
  runtimeHandler?: string;
}

/** Options of the status calls. */
export interface StatusOptions extends GrpcCallOptions {
  /** Ask for the runtime's extra `info` map too (default false). */
  verbose?: boolean;
}

/** Options of execSync(). */
export interface ExecSyncOptions extends Omit<GrpcCallOptions, "timeout"> {
  /** Milliseconds the runtime lets the command run (sent as whole seconds, rounded up); 0 = no limit. */
  timeout?: number;
  /** Extra time the client waits for the runtime's answer past `timeout` (default 2 s). */
  margin?: number;
}

/** What execSync() resolves to. */
export interface ExecSyncResult {
  /** Everything the command wrote to stdout. */
  stdout: Buffer;
  /** Everything it wrote to stderr. */
  stderr: Buffer;
  /** Its exit code. */
  exitCode: number;
}

export interface PullImageOptions extends GrpcCallOptions {
  /**
   * Registry credentials. Omitted: looked up with runtime-core's resolveCredentials (Docker config,
   * credential helpers). `false`: pull anonymously. Credentials whose `serverAddress` names another
   * registry than the image's are refused (UnauthorizedError) and nothing is sent; without a
   * `serverAddress` they are for the image's registry.
   */
  auth?: RegistryCredentials | DeepPartial<AuthConfig> | false;
  /** Options for the credential lookup. */
  credentials?: ResolveCredentialsOptions;
  /** The config of the pod the image is for, passed to the runtime (some pick a runtime handler by it). */
  sandboxConfig?: DeepPartial<PodSandboxConfig>;
}

/** Options of exec() and attach(): which streams to open, and their bounds. */
export interface StreamOptions {
  /** Stream stdin (default false). */
  stdin?: boolean;
  /** Stream stdout (default true). */
  stdout?: boolean;
  /** Stream stderr (default true unless tty: a TTY merges stderr into stdout). */
  stderr?: boolean;
  /** Allocate a pseudo-terminal (default false). */
  tty?: boolean;
  /** Aborting closes the stream (and fails `exit` with an AbortedError). */
  signal?: AbortSignal;
  /** Milliseconds the session may last; then it is closed and `exit` fails with a TimeoutError. */
  timeout?: number;
  /** Deadline for the Exec/Attach RPC and the stream upgrade (default: the client's default). */
  requestTimeout?: number;
  /**
   * The wire: "spdy" (each channel its own stream; `stdin.end()` reaches the command), "websocket" (the
   * channel protocol; stdin can be closed only with v5, which containerd 1.6 lacks), or "auto" (default):
   * SPDY, falling back to WebSocket with a fresh URL when the runtime refuses the SPDY upgrade.
   */
  transport?: StreamTransportOption;
}

/** The streams an Exec or Attach request asks for. */
type StreamFlags = { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean };

/** The stream flags of an Exec or Attach request: stdout by default, stderr unless there is a TTY. */
function streamFlags(options: StreamOptions): StreamFlags {
  const tty = options.tty ?? false;
  return {
    tty,
    stdin: options.stdin ?? false,
    stdout: options.stdout ?? true,
    stderr: options.stderr ?? !tty,
  };
}

/** Options of portForward(). */
export interface PortForwardCallOptions {
  /** Closes the connection: an AbortedError once the signal fires. */
  signal?: AbortSignal;
  /** Deadline for the PortForward RPC and the stream upgrade (default: the client's default). */
  requestTimeout?: number;
  /** "auto" (default), "spdy" (ending the writable side sends FIN) or "websocket" (no half-close). */
  transport?: StreamTransportOption;
}

/** v1alpha2's Version messages are wire-identical to v1's: reuse the codec under the old service name. */
const V1ALPHA2_RUNTIME = {
  name: "RuntimeService",
  fullName: "runtime.v1alpha2.RuntimeService",
  methods: {
    version: {
      name: "Version",
      requestType: VersionRequest,
      requestStream: false,
      responseType: VersionResponseType,
      responseStream: false,
      options: {},
    },
  },
} as const;

/**
 * containerd's CRI parses AuthConfig.server_address as a URL and uses the credentials only when its host
 * is the registry host being contacted (and with any host when it is empty; CRI-O ignores it): a bare
 * "127.0.0.1:5001" fails to parse, and Docker Hub's "https://index.docker.io/v1/" or "docker.io" never
 * match registry-1.docker.io. Credentials checked to be the image's registry's get the URL it matches.
 */
function criServerAddress(registryHost: string): string {
  return `https://${registryHost}`;
}

function execResult(res: ExecSyncResponse): ExecSyncResult {
  return { stdout: res.stdout, stderr: res.stderr, exitCode: res.exitCode };
}

function describe(err: unknown): string {
  if (isBerthError(err)) return err.daemonMessage || err.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * A client of the Kubernetes CRI (runtime.v1) as CRI-O and containerd serve it: RuntimeService and
 * ImageService with default deadlines (DEFAULT_CRI_TIMEOUT_MS), exec/attach/port-forward over the
 * runtime's streaming server, and container logs. gRPC errors become berth errors (NOT_FOUND is a
 * NotFoundError, UNAVAILABLE an UnavailableError, DEADLINE_EXCEEDED a TimeoutError, ...).
 */
export class CriClient {
  /** The RuntimeService endpoint. */
  readonly endpoint: string;
  /** The ImageService endpoint (the same as `endpoint` unless configured apart). */
  readonly imageEndpoint: string;
  /** The gRPC channel to `endpoint`. */
  readonly channel: GrpcChannel;
  /** The gRPC channel to `imageEndpoint` (the same object as `channel` when they are equal). */
  readonly imageChannel: GrpcChannel;
  /**
   * RuntimeService as generated: one method per RPC, with the default deadline (none for ExecSync, whose
   * deadline `execSync()` derives from its command's timeout) and CRI errors refined (refineCriError).
   */
  readonly runtime: ServiceClient<typeof RuntimeServiceDefinition>;
  /** ImageService as generated: the default deadline (none for PullImage), CRI errors refined. */
  readonly image: ServiceClient<typeof ImageServiceDefinition>;
  /** The deadline of calls that set none, in milliseconds. */
  readonly defaultTimeout: number;
  /** Sandbox configs this client created, so createContainer can pass them back as CRI requires. */
  readonly #sandboxConfigs = new Map<string, DeepPartial<PodSandboxConfig>>();
  /** Set once the runtime refused a SPDY upgrade: "auto" then goes straight to WebSocket. */
  #spdyRefused = false;
  readonly #streamingHosts: string[];

  constructor(options: CriClientOptions) {
    this.endpoint = options.endpoint;
    this.imageEndpoint = options.imageEndpoint || options.endpoint;
    this.defaultTimeout = options.defaultTimeout ?? DEFAULT_CRI_TIMEOUT_MS;
    // A runtime reached over TCP streams from its own host.
    const tcpHost =
      unixSocketPath(options.endpoint) === undefined &&
      /^(?:tcp:\/\/)?([^/]+):\d+$/.exec(options.endpoint)?.[1];
    this.#streamingHosts = [...(options.streamingHosts ?? []), ...(tcpHost ? [tcpHost] : [])];
    const channelOptions = {
      backend: "cri",
      ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
    };
    this.channel = new GrpcChannel({ address: options.endpoint, ...channelOptions });
    this.imageChannel =
      this.imageEndpoint !== options.endpoint
        ? new GrpcChannel({ address: this.imageEndpoint, ...channelOptions })
        : this.channel;
    // Like the kubelet: image pulls have no deadline, and ExecSync's is its command's (see execSync).
    const service = {
      timeout: this.defaultTimeout,
      untimed: ["pullImage", "execSync"],
      mapError: refineCriError,
    };
    this.runtime = this.channel.service(RuntimeServiceDefinition, service);
    this.image = this.imageChannel.service(ImageServiceDefinition, service);
  }

  /**
   * A client for the configured endpoint, without contacting it: CONTAINER_RUNTIME_ENDPOINT (and
   * IMAGE_SERVICE_ENDPOINT), else crictl.yaml, else CRI-O's socket. Use `connect()` to probe the defaults.
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env, crictlConfig?: string): CriClient {
    const { candidates, config } = endpointCandidates({ env, ...(crictlConfig ? { crictlConfig } : {}) });
    const first = candidates[0] as EndpointCandidate;
    return new CriClient({
      endpoint: first.endpoint,
      ...(first.imageEndpoint ? { imageEndpoint: first.imageEndpoint } : {}),
      ...(config.timeout ? { defaultTimeout: config.timeout * 1000 } : {}),
    });
  }

  /**
   * Find a runtime that answers: the configured endpoint (option, env, crictl.yaml), else each default
   * socket in crictl's order. The client returned has checked it speaks runtime.v1 (`ensureV1`).
   * Fails with UnavailableError listing every endpoint tried and why, or ApiVersionError for a runtime
   * that speaks only v1alpha2.
   */
  static async connect(options: CriConnectOptions = {}): Promise<CriClient> {
    const { candidates, config } = endpointCandidates(options);
    const probeTimeout =
      options.probeTimeout ?? (config.timeout ? config.timeout * 1000 : DEFAULT_PROBE_TIMEOUT_MS);
    const tried: string[] = [];
    for (const candidate of candidates) {
      const path = unixSocketPath(candidate.endpoint);
      if (path !== undefined) {
        const st = await stat(path).catch((err: NodeJS.ErrnoException) => err.code ?? "error");
        if (typeof st === "string" || !st.isSocket()) {
          tried.push(
            `${candidate.endpoint} (${candidate.source}): ${typeof st === "string" ? st : "not a socket"}`,
          );
          continue;
        }
      }
      const client = new CriClient({
        endpoint: candidate.endpoint,
        ...(candidate.imageEndpoint ? { imageEndpoint: candidate.imageEndpoint } : {}),
        ...(options.maxMessageBytes === undefined ? {} : { maxMessageBytes: options.maxMessageBytes }),
        ...(config.timeout ? { defaultTimeout: config.timeout * 1000 } : {}),
      });
      try {
        await client.ensureV1({
          timeout: probeTimeout,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        return client;
      } catch (err) {
        client.close();
        if (err instanceof ApiVersionError || options.signal?.aborted) throw err;
        tried.push(`${candidate.endpoint} (${candidate.source}): ${describe(err)}`);
      }
    }
    throw new UnavailableError(`no CRI runtime answered; tried ${tried.join("; ")}`, {
      operation: "connect",
      backend: "cri",
    });
  }

  /**
   * Check the runtime serves runtime.v1. A runtime that answers only runtime.v1alpha2 (containerd < 1.5
   * with v1 off, CRI-O < 1.20) is an ApiVersionError naming both versions.
   */
  async ensureV1(options: GrpcCallOptions = {}): Promise<VersionResponse> {
    try {
      return await this.version(options);
    } catch (err) {
      if (!(err instanceof UnsupportedError)) throw err;
      const old = this.channel.service(V1ALPHA2_RUNTIME, { timeout: this.defaultTimeout });
      const v = await old.version({ version: "v1alpha2" }, options).catch(() => undefined);
      const actual = v?.runtimeApiVersion || (v ? "v1alpha2" : "none");
      throw new ApiVersionError(
        `CRI runtime at ${this.endpoint} does not serve runtime.v1 (it answers ${actual}` +
          `${v ? `: ${v.runtimeName} ${v.runtimeVersion}` : ""}); berth needs runtime.v1`,
        "v1",
        actual,
        { operation: "Version", backend: "cri", status: (err as BerthError).status, cause: err },
      );
    }
  }

  /** An ExecSync's call options: its deadline is the command's timeout plus the margin, else none. */
  #execOpts(options: ExecSyncOptions | undefined): GrpcCallOptions | undefined {
    if (options === undefined) return undefined;
    const { timeout, margin, ...call } = options;
    return timeout ? { ...call, timeout: timeout + (margin ?? DEFAULT_EXEC_SYNC_MARGIN_MS) } : call;
  }

  // RuntimeService: runtime

  /** The runtime's name and version, and the CRI version it speaks. */
  version(options?: GrpcCallOptions): Promise<VersionResponse> {
    return this.runtime.version({ version: "v1" }, options);
  }

  /** The runtime's conditions (RuntimeReady, NetworkReady). */
  status(options?: StatusOptions): Promise<StatusResponse> {
    return this.runtime.status({ verbose: options?.verbose ?? false }, options);
  }

  /** The runtime's configuration as the kubelet needs it (its cgroup driver). */
  runtimeConfig(options?: GrpcCallOptions): Promise<RuntimeConfigResponse> {
    return this.runtime.runtimeConfig({}, options);
  }

  // RuntimeService: pod sandboxes

  /** Creates and starts a pod sandbox, and resolves to its id; the config is kept for createContainer(). */
  async runPodSandbox(
    config: DeepPartial<PodSandboxConfig>,
    options: RunPodSandboxOptions = {},
  ): Promise<string> {
    const { runtimeHandler, ...call } = options;
    const res = await this.runtime.runPodSandbox({ config, runtimeHandler: runtimeHandler ?? "" }, call);
    this.#sandboxConfigs.set(res.podSandboxId, config);
    return res.podSandboxId;
  }

  /** Stops a pod sandbox and every container in it. */
  async stopPodSandbox(podSandboxId: string, options?: GrpcCallOptions): Promise<void> {
    await this.runtime.stopPodSandbox({ podSandboxId }, options);
  }

  /** Remove a stopped sandbox. The CRI makes this idempotent: an unknown id succeeds. */
  async removePodSandbox(podSandboxId: string, options?: GrpcCallOptions): Promise<void> {
    await this.runtime.removePodSandbox({ podSandboxId }, options);
    this.#sandboxConfigs.delete(podSandboxId);
  }

  /** A pod sandbox's state, network and metadata; NotFoundError for an unknown id. */
  podSandboxStatus(podSandboxId: string, options?: StatusOptions): Promise<PodSandboxStatusResponse> {
    return this.runtime.podSandboxStatus({ podSandboxId, verbose: options?.verbose ?? false }, options);
  }

  /** The pod sandboxes that match `filter` (all of them without one). */
  async listPodSandbox(
    filter?: DeepPartial<PodSandboxFilter>,
    options?: GrpcCallOptions,
  ): Promise<PodSandbox[]> {
    const res = await this.runtime.listPodSandbox(filter ? { filter } : {}, options);
    return res.items;
  }

  // RuntimeService: containers

  /**
   * Create a container in a sandbox. `sandboxConfig` defaults to the config this client ran the sandbox
   * with. When the sandbox has a log directory and the config no log path, the container logs to
   * `<name>_<attempt>.log` in it, so CRI logs exist (see `readContainerLogs`).
   */
  async createContainer(
    podSandboxId: string,
    config: DeepPartial<ContainerConfig>,
    sandboxConfig?: DeepPartial<PodSandboxConfig>,
    options?: GrpcCallOptions,
  ): Promise<string> {
    const sandbox = sandboxConfig ?? this.#sandboxConfigs.get(podSandboxId);
    const withLog =
      !config.logPath && sandbox?.logDirectory && config.metadata?.name
        ? { ...config, logPath: `${config.metadata.name}_${config.metadata.attempt ?? 0}.log` }
        : config;
    const res = await this.runtime.createContainer(
      { podSandboxId, config: withLog, ...(sandbox ? { sandboxConfig: sandbox } : {}) },
      options,
    );
    return res.containerId;
  }

  /** Starts a created container. */
  async startContainer(containerId: string, options?: GrpcCallOptions): Promise<void> {
    await this.runtime.startContainer({ containerId }, options);
  }

  /** Stop with a grace period in seconds; like the kubelet, the deadline is the default plus the grace. */
  async stopContainer(containerId: string, gracePeriodSeconds = 0, options?: GrpcCallOptions): Promise<void> {
    const deadline = this.defaultTimeout + gracePeriodSeconds * 1000;
    await this.runtime.stopContainer(
      { containerId, timeout: BigInt(gracePeriodSeconds) },
      { ...options, timeout: options?.timeout ?? deadline },
    );
  }

  /** Remove a container (the CRI makes this idempotent: an unknown id succeeds). */
  async removeContainer(containerId: string, options?: GrpcCallOptions): Promise<void> {
    await this.runtime.removeContainer({ containerId }, options);
  }

  /** A container's state, exit code, times and log path; NotFoundError for an unknown id. */
  containerStatus(containerId: string, options?: StatusOptions): Promise<ContainerStatusResponse> {
    return this.runtime.containerStatus({ containerId, verbose: options?.verbose ?? false }, options);
  }

  /** The containers that match `filter` (all of them without one). */
  async listContainers(
    filter?: DeepPartial<ContainerFilter>,
    options?: GrpcCallOptions,
  ): Promise<Container[]> {
    const res = await this.runtime.listContainers(filter ? { filter } : {}, options);
    return res.containers;
  }

  /**
   * Run a command to completion and collect its output. `timeout` (ms) goes to the runtime, which kills
   * the command when it passes; the client's own deadline is that plus `margin`, so a runtime that hangs
   * still ends the call with a TimeoutError on time. Without a timeout, like the kubelet, no deadline.
   */
  async execSync(containerId: string, cmd: string[], options?: ExecSyncOptions): Promise<ExecSyncResult> {
    const timeout = options?.timeout;
    const seconds = timeout ? BigInt(Math.ceil(timeout / 1000)) : 0n;
    return this.runtime
      .execSync({ containerId, cmd, timeout: seconds }, this.#execOpts(options))
      .then(execResult);
  }

  /**
   * Start a command with streams over the runtime's streaming server (CRI Exec + SPDY or WebSocket, see
   * `transport`). Await `session.exit` for the exit code, or `session.output(stdin)` to collect everything.
   */
  async exec(containerId: string, cmd: string[], options: StreamOptions = {}): Promise<StreamSession> {
    const req = { containerId, cmd, ...streamFlags(options) };
    const again = async () => (await this.runtime.exec(req, this.#streamCallOpts(options))).url;
    return this.#session(await again(), "Exec", req, options, again);
  }

  /** Attach to a container's main process (stdin needs a container created with `stdin: true`). */
  async attach(containerId: string, options: StreamOptions = {}): Promise<StreamSession> {
    const req = { containerId, ...streamFlags(options) };
    const again = async () => (await this.runtime.attach(req, this.#streamCallOpts(options))).url;
    return this.#session(await again(), "Attach", req, options, again);
  }

  /** One connection to `port` inside the sandbox's network namespace, as a Duplex. */
  async portForward(
    podSandboxId: string,
    port: number,
    options: PortForwardCallOptions = {},
  ): Promise<PortForwardStream> {
    const again = async () =>
      (await this.runtime.portForward({ podSandboxId, port: [port] }, this.#streamCallOpts(options))).url;
    return openPortForward(await again(), port, {
      signal: options.signal,
      streamingHosts: this.#streamingHosts,
      handshakeTimeout: options.requestTimeout ?? this.defaultTimeout,
      ...this.#transport(options.transport, again),
    });
  }

  /** Listen on a local port and forward each connection to `port` in the sandbox (kubectl port-forward). */
  portForwardListen(
    podSandboxId: string,
    port: number,
    options: ListenOptions & Pick<PortForwardCallOptions, "transport"> = {},
  ): Promise<PortForwardListener> {
    const { transport, ...listen } = options;
    return listenPortForward(
      () => this.portForward(podSandboxId, port, transport ? { transport } : {}),
      listen,
    );
  }

  #streamCallOpts(options: { signal?: AbortSignal; requestTimeout?: number }): GrpcCallOptions {
    return {
      timeout: options.requestTimeout ?? this.defaultTimeout,
      ...(options.signal ? { signal: options.signal } : {}),
    };
  }

  #session(
    url: string,
    operation: string,
    req: StreamFlags,
    options: StreamOptions,
    again: () => Promise<string>,
  ): Promise<StreamSession> {
    return openStreamSession(url, {
      operation,
      ...req,
      streamingHosts: this.#streamingHosts,
      signal: options.signal,
      timeout: options.timeout,
      handshakeTimeout: options.requestTimeout ?? this.defaultTimeout,
      ...this.#transport(options.transport, again),
    });
  }

  /**
   * The transport to ask for, and how "auto" gets a URL for its WebSocket fallback: CRI streaming URLs are
   * single-use and a refused SPDY upgrade spent the first one. A refusal is remembered for this client.
   */
  #transport(
    transport: StreamTransportOption | undefined,
    again: () => Promise<string>,
  ): { transport: StreamTransportOption; fallbackUrl: () => Promise<string> } {
    const chosen = transport ?? "auto";
    return {
      transport: chosen === "auto" && this.#spdyRefused ? "websocket" : chosen,
      fallbackUrl: () => {
        this.#spdyRefused = true;
        return again();
      },
    };
  }

  /**
   * The container's CRI log as whole lines (partials merged), from the log path the runtime reports.
   * The container must have been created with a log path (createContainer sets one when its sandbox has
   * a log directory).
   */
  async *logs(containerId: string, options: ReadCriLogsOptions = {}): AsyncGenerator<CriLogEntry> {
    const { status } = await this.containerStatus(
      containerId,
      options.signal ? { signal: options.signal } : {},
    );
    const path = status?.logPath;
    if (!path) {
      throw new UnsupportedError(
        `logs: container ${containerId} has no log path (its sandbox has no log directory)`,
        {
          operation: "logs",
          backend: "cri",
        },
      );
    }
    yield* readCriLogs(path, options);
  }

  /** A container's CPU, memory and filesystem use; undefined when the runtime has none for it. */
  async containerStats(containerId: string, options?: GrpcCallOptions): Promise<ContainerStats | undefined> {
    const res = await this.runtime.containerStats({ containerId }, options);
    return res.stats;
  }

  /** The resource use of every container that matches `filter`. */
  async listContainerStats(
    filter?: DeepPartial<ContainerStatsFilter>,
    options?: GrpcCallOptions,
  ): Promise<ContainerStats[]> {
    const res = await this.runtime.listContainerStats(filter ? { filter } : {}, options);
    return res.stats;
  }

  /**
   * Container lifecycle events as a stream (no deadline; cancel or abort to end). containerd added this
   * in 1.7: older runtimes end the iteration with an UnsupportedError.
   */
  getContainerEvents(options?: GrpcCallOptions): ServerStream<ContainerEventResponse> {
    return this.runtime.getContainerEvents({}, options);
  }

  // ImageService

  /**
   * Pull an image and return its reference on the node. Credentials come from `auth`, else from the Docker
   * config and credential helpers for the image's registry. Like the kubelet, no deadline unless given.
   */
  async pullImage(image: string, options: PullImageOptions = {}): Promise<string> {
    const { auth, credentials, sandboxConfig, ...call } = options;
    const ref = parseImageRef(image);
    let authConfig: DeepPartial<AuthConfig> | undefined;
    // Given credentials go only with an image of the registry they name; the runtime would send them to
    // whatever registry the image is on.
    if (auth)
      authConfig = credentialsForImage(ref, auth, { operation: "ImageService.PullImage", backend: "cri" });
    else if (auth === undefined) {
      const found = await resolveCredentials(ref.registry, {
        ...credentials,
        ...(call.signal ? { signal: call.signal } : {}),
      });
      // RegistryCredentials' fields are a subset of AuthConfig's, with the same names.
      if (found) authConfig = found;
    }
    if (authConfig) authConfig = { ...authConfig, serverAddress: criServerAddress(ref.registryHost) };
    const res = await this.image.pullImage(
      {
        image: { image },
        ...(authConfig ? { auth: authConfig } : {}),
        ...(sandboxConfig ? { sandboxConfig } : {}),
      },
      call,
    );
    return res.imageRef;
  }

  /** The images the runtime has (those that match `filter`). */
  async listImages(filter?: DeepPartial<ImageFilter>, options?: GrpcCallOptions): Promise<Image[]> {
    const res = await this.image.listImages(filter ? { filter } : {}, options);
    return res.images;
  }

  /** The image's status; `image` is undefined when the runtime does not have it (CRI reports no error). */
  imageStatus(image: string, options?: StatusOptions): Promise<ImageStatusResponse> {
    return this.image.imageStatus({ image: { image }, verbose: options?.verbose ?? false }, options);
  }

  /** Removes an image by reference or id (the CRI makes this idempotent: an unknown image succeeds). */
  async removeImage(image: string, options?: GrpcCallOptions): Promise<void> {
    await this.image.removeImage({ image: { image } }, options);
  }

  /** How much space the image filesystems use. */
  imageFsInfo(options?: GrpcCallOptions): Promise<ImageFsInfoResponse> {
    return this.image.imageFsInfo({}, options);
  }

  /** Closes both channels; calls after it fail. */
  close(): void {
    this.channel.close();
    if (this.imageChannel !== this.channel) this.imageChannel.close();
  }
}
