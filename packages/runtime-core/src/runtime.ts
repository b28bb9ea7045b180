// The Runtime interface: container work in users' words, the same on every backend. Each client
// package implements it in an adapter; what a backend cannot do it declares in `capabilities`, and
// asking for it anyway gives an UnsupportedError instead of a silent no-op.
import type { RegistryCredentials } from "./credentials.js";

/** Which backend a Runtime talks to: `docker`, `podman`, `containerd`, `cri`, or a third party's own name. */
export type BackendName = "docker" | "podman" | "containerd" | "cri" | (string & {});

/** A host path mounted into the container. */
export interface BindMount {
  /** Always `"bind"`. */
  type: "bind";
  /** Absolute path on the daemon's host (not the caller's, when the daemon is remote). */
  source: string;
  /** Absolute path inside the container. */
  target: string;
  /** Mount read-only (default false). */
  readonly?: boolean;
}

/** A memory-backed tmpfs mounted into the container (capability `tmpfs`). */
export interface TmpfsMount {
  /** Always `"tmpfs"`. */
  type: "tmpfs";
  /** Absolute path inside the container. */
  target: string;
  /** Size limit in bytes. */
  size?: number;
}

/** A container port published on the host (capability `ports`). */
export interface PortMapping {
  /** The port inside the container. */
  containerPort: number;
  /** The port on the host; when unset, the backend picks a free one. */
  hostPort?: number;
  /** The host address to listen on (default: every address, as the backend defaults). */
  hostIp?: string;
  /** Default `"tcp"`. */
  protocol?: "tcp" | "udp";
}

/** A container port as the backend bound it on the host (what `inspect()` reports). */
export interface BoundPort {
  /** The port inside the container. */
  containerPort: number;
  /** The protocol. */
  protocol: "tcp" | "udp";
  /** The host address it listens on (`0.0.0.0` or `::` for every address). */
  hostIp: string;
  /** The port on the host. */
  hostPort: number;
}

/** Where a client on this machine connects to reach a container's port: see `Runtime.endpoint()`. */
export interface Endpoint {
  /** An address to connect to: loopback where the port listens on every address, never `0.0.0.0`. */
  host: string;
  /** The port on the host. */
  port: number;
}

/** A `waitFor()` probe: a line of output matching `log`. */
export interface LogProbe {
  /** The pattern: a string is found anywhere in the line, a RegExp tested against it. */
  log: string | RegExp;
  /** Only lines of this stream (default either). */
  stream?: "stdout" | "stderr";
}

/**
 * A `waitFor()` probe: the published `port` accepting a TCP connection that the far end keeps open or
 * answers on (a proxy that accepts and then closes at once, such as Docker's userland proxy in front of a
 * container not listening yet, does not count). Needs capability `ports`.
 */
export interface PortProbe {
  /** The container port (TCP), published. */
  port: number;
}

/** A `waitFor()` probe: an HTTP GET on a published port. Needs capability `ports`. */
export interface HttpProbe {
  /** What to ask for. */
  http: {
    /** The container port (TCP), published. */
    port: number;
    /** The path and query asked for (default `/`). */
    path?: string;
    /** The status that counts as ready (default any 2xx). */
    status?: number;
  };
}

/** A `waitFor()` probe: a command exiting 0 in the container. */
export interface ExecProbe {
  /** The command and its arguments. */
  exec: string[];
}

/** What `waitFor()` waits for: exactly one kind of probe. */
export type ReadinessProbe = LogProbe | PortProbe | HttpProbe | ExecProbe;

/** Options of `waitFor()`. */
export interface WaitForOptions extends CallOptions {
  /** Give up after this many milliseconds with a TimeoutError (default 60,000). */
  timeout?: number;
  /** Milliseconds between two tries of a `port`, `http` or `exec` probe (default 250). */
  interval?: number;
}

/** A container to create, in terms every backend understands. */
export interface ContainerSpec {
  /** Image reference (`busybox:latest`, `ghcr.io/o/r@sha256:...`); names without a registry are Docker Hub's. */
  image: string;
  /** Arguments (Docker's Cmd); with `entrypoint` unset, the image's entrypoint runs them. */
  command?: string[];
  /** Replaces the image's entrypoint; `command` is then its arguments. */
  entrypoint?: string[];
  /** KEY=VALUE pairs or a map. */
  env?: Record<string, string> | string[];
  /** Working directory inside the container (default: the image's). */
  workdir?: string;
  /** "user", "uid", "uid:gid" or "user:group". */
  user?: string;
  /** Labels to set on the container; `list()` and `events()` filter by them. */
  labels?: Record<string, string>;
  /** Bind and tmpfs mounts. */
  mounts?: Array<BindMount | TmpfsMount>;
  /** Ports to publish on the host (capability `ports`). */
  ports?: PortMapping[];
  /** Memory limit in bytes. */
  memory?: number;
  /** CPU limit in cores (0.5 = half a core). */
  cpus?: number;
  /** "bridge" (the backend's default network), "host", "none". */
  network?: "bridge" | "host" | "none" | (string & {});
  /** Allocate a pseudo-terminal (capability `tty`); stdout and stderr then arrive merged as stdout. */
  tty?: boolean;
  /** Keep stdin open so `exec`/attach can write to it. */
  stdin?: boolean;
  /** Container name; the backend generates one when unset. A taken name is a ConflictError. */
  name?: string;
  /** CRI: run in this existing pod sandbox instead of a new one. */
  pod?: string;
}

/** A container's state, normalised across backends; a backend's own other states pass through as strings. */
export type ContainerState = "created" | "running" | "paused" | "exited" | "unknown" | (string & {});

/** What `inspect()` and `list()` report about a container. */
export interface ContainerInfo {
  /** The container's full id. */
  id: string;
  /** The container's name (without Docker's leading slash). */
  name: string;
  /** The image as the container was created from it (a reference or an id). */
  image: string;
  /** Its state now. */
  state: ContainerState;
  /** Exit code, once it has exited. */
  exitCode?: number;
  /** When it was created, where the backend reports it. */
  createdAt?: Date;
  /** When it last started, where the backend reports it. */
  startedAt?: Date;
  /** When it last exited, where the backend reports it. */
  finishedAt?: Date;
  /** Host process id of its init process while running, where the backend reports it. */
  pid?: number;
  /** Its IP address on the backend's network, when it has one. */
  ip?: string;
  /** Its labels (empty when none). */
  labels: Record<string, string>;
  /** Its published ports as bound on the host, while they are (empty when none or not running). */
  ports: BoundPort[];
}

/** How a container ended: what `wait()` resolves to. */
export interface ExitStatus {
  /** The exit code of its main process. */
  exitCode: number;
  /** When it exited, where the backend reports it. */
  finishedAt?: Date;
}

/** A chunk of a container's output, as `logs()` yields it. */
export interface LogEntry {
  /** The stream it was written to (a TTY container writes everything to stdout). */
  stream: "stdout" | "stderr";
  /** The bytes, as written (not split at lines, not decoded). */
  data: Uint8Array;
  /** Present when the backend records it (timestamps: true, or CRI logs). */
  time?: Date;
}

/** One progress report of a pull, passed to `onProgress`. */
export interface PullProgress {
  /** Layer or blob this is about, when any. */
  id?: string;
  /** The step, in the backend's words (`Downloading`, `Pull complete`, `resolved`). */
  status: string;
  /** Bytes done so far, when known. */
  current?: number;
  /** Bytes in all, when known. */
  total?: number;
}

/** What `info()` reports about the daemon. */
export interface RuntimeInfo {
  /** The backend the Runtime talks to. */
  backend: BackendName;
  /** The daemon's product name (`Docker Engine`, `containerd`, `cri-o`). */
  name: string;
  /** The daemon's version. */
  version: string;
  /** The API version in use, where the backend has one (Docker's `1.51`, CRI's `v1`). */
  apiVersion?: string;
  /** The daemon host's operating system, where reported. */
  os?: string;
  /** The daemon host's architecture, where reported. */
  arch?: string;
}

/** A point-in-time sample of a container's resource use (capability `stats`). */
export interface ContainerStats {
  /** When the sample was taken. */
  time: Date;
  /** CPU time used since the container started, in nanoseconds (cumulative, not a rate). */
  cpuNanos?: number;
  /** Memory in use, in bytes. */
  memoryBytes?: number;
  /** The memory limit in bytes, when one is set. */
  memoryLimitBytes?: number;
  /** Number of processes and threads in the container. */
  pids?: number;
}

/** Something that happened on the daemon, as `events()` yields it (capability `events`). */
export interface RuntimeEvent {
  /** When it happened. */
  time: Date;
  /** What kind of object it is about (`container`, `image`, ...). */
  type: string;
  /** What happened (`create`, `start`, `die`, ...), in the backend's words. */
  action: string;
  /** The object's id, when it is about one. */
  id?: string;
  /** Further details (the container's labels, its exit code), when the backend sends them. */
  attributes?: Record<string, string>;
}

/** Options every Runtime call takes. */
export interface CallOptions {
  /** Cancels the call: it rejects with an AbortedError once the signal fires. */
  signal?: AbortSignal;
}

/** Options of `pull()`. */
export interface PullOptions extends CallOptions {
  /** Registry credentials; by default the backend's own (Docker's config, the daemon's). */
  auth?: RegistryCredentials;
  /** "os/arch[/variant]" */
  platform?: string;
  /** Called with each progress report while the pull runs. */
  onProgress?: (progress: PullProgress) => void;
}

/** Options of `logs()`. */
export interface LogsOptions extends CallOptions {
  /** Keep yielding new output until the container exits (default false: what is there now). */
  follow?: boolean;
  /** Only entries at or after this time. */
  since?: Date;
  /** Only the last N lines. */
  tail?: number;
  /** Ask the backend for each entry's time (`LogEntry.time`); default false. */
  timestamps?: boolean;
}

/** Options of `exec()`. */
export interface ExecOptions extends CallOptions {
  /** Extra environment, KEY=VALUE pairs or a map. */
  env?: Record<string, string> | string[];
  /** Working directory of the command (default: the container's). */
  workdir?: string;
  /** "user", "uid", "uid:gid" or "user:group" (default: the container's). */
  user?: string;
  /** Allocate a pseudo-terminal (capability `tty`). */
  tty?: boolean;
  /** Written to the command's stdin, which is then closed (capability `execStdin`). */
  stdin?: string | Uint8Array;
  /** Milliseconds; past it the call fails with a TimeoutError. */
  timeout?: number;
}

/** What `exec()` resolves to. */
export interface ExecResult {
  /** The command's exit code. */
  exitCode: number;
  /** Everything it wrote to stdout. */
  stdout: Uint8Array;
  /** Everything it wrote to stderr (empty with a TTY). */
  stderr: Uint8Array;
}

/** Options of `run()`: those of `pull()` plus what to do around the container. */
export interface RunOptions extends PullOptions {
  /** Remove the container when it has exited (default true). */
  remove?: boolean;
  /** Pull the image when it is missing (default true). */
  pull?: boolean;
  /** Called with each output entry as it arrives; output is still collected. */
  onOutput?: (entry: LogEntry) => void;
}

/** What `run()` resolves to: the container's exit code and output. */
export interface RunResult extends ExecResult {
  /** The container's id (already removed unless `remove: false`). */
  id: string;
}

/** Options of `stop()`. */
export interface StopOptions extends CallOptions {
  /** Seconds to wait after the stop signal before killing (default 10). */
  graceSeconds?: number;
  /** The POSIX signal to stop with, by name (default: the image's stop signal, else `SIGTERM`). */
  signalName?: string;
}

/** What a backend can do; a false entry means the matching call throws UnsupportedError. */
export interface Capabilities {
  /** `ContainerSpec.ports`. */
  ports: boolean;
  /** tmpfs mounts. */
  tmpfs: boolean;
  /** `ContainerSpec.cpus`. */
  cpuLimit: boolean;
  /** `ContainerSpec.memory`. */
  memoryLimit: boolean;
  /** network "host". */
  hostNetwork: boolean;
  /** network "bridge": a private network with an IP reachable from the host. */
  bridgeNetwork: boolean;
  /** kill() with any signal (false: only SIGKILL). */
  signals: boolean;
  /** stats(). */
  stats: boolean;
  /** events(). */
  events: boolean;
  /** `ExecOptions.stdin`. */
  execStdin: boolean;
  /** `tty` in ContainerSpec and ExecOptions. */
  tty: boolean;
  /** pause() and unpause(). */
  pause: boolean;
}

/**
 * Container work on one backend, the same everywhere. Every call checks its arguments first (a
 * ValidationError for a wrong one) and fails with a BerthError subclass: NotFoundError for a missing
 * container or image, ConflictError for a name or state clash, UnavailableError when the daemon cannot be
 * reached, UnsupportedError for what `capabilities` says the backend cannot do, AbortedError once
 * `signal` fires, TimeoutError past a timeout.
 */
export interface Runtime {
  /** The backend this Runtime talks to. */
  readonly backend: BackendName;
  /** What the backend can do; a call that needs a false entry throws UnsupportedError. */
  readonly capabilities: Capabilities;
  /** The daemon's name, version and platform; also how `connect()` checks that a daemon answers. */
  info(options?: CallOptions): Promise<RuntimeInfo>;
  /**
   * Pulls an image (its manifest for this platform or `options.platform`, and the layers) into the
   * backend's store. An unknown image is a NotFoundError, refused credentials an UnauthorizedError, a
   * layer whose digest does not match a DigestMismatchError.
   */
  pull(image: string, options?: PullOptions): Promise<void>;
  /** Creates a container (not started) and resolves to its id. The image must be present: see `run()`. */
  create(spec: ContainerSpec, options?: CallOptions): Promise<string>;
  /** Starts a created container. */
  start(id: string, options?: CallOptions): Promise<void>;
  /** Pull if missing, create, start, wait, collect output, remove (unless remove: false). */
  run(spec: ContainerSpec, options?: RunOptions): Promise<RunResult>;
  /** A container's state and details; NotFoundError when there is none with that id or name. */
  inspect(id: string, options?: CallOptions): Promise<ContainerInfo>;
  /**
   * Containers with every label in `labels`; running ones only unless `all` is true.
   */
  list(options?: CallOptions & { labels?: Record<string, string>; all?: boolean }): Promise<ContainerInfo[]>;
  /** Resolves once the container has exited (at once when it already has), with its exit code. */
  wait(id: string, options?: CallOptions): Promise<ExitStatus>;
  /** The container's output, stdout and stderr apart; with `follow`, until it exits. */
  logs(id: string, options?: LogsOptions): AsyncIterable<LogEntry>;
  /**
   * Runs a command in a running container and resolves with its exit code and output (a non-zero exit
   * is not an error). Past `options.timeout` ms it fails with a TimeoutError.
   */
  exec(id: string, command: string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * Where a client on this machine connects to reach `containerPort` (TCP unless `protocol` says udp) of
   * a running container (capability `ports`). NotFoundError when the container does not publish it.
   */
  endpoint(
    id: string,
    containerPort: number,
    options?: CallOptions & { protocol?: "tcp" | "udp" },
  ): Promise<Endpoint>;
  /**
   * Resolves once `probe` succeeds on the running container. A container that exits first fails the
   * wait at once with a ContainerExitedError (its exit code and last lines of output); past
   * `options.timeout` it fails with a TimeoutError naming the probe's last failure. `port` and `http`
   * probes need capability `ports`.
   */
  waitFor(id: string, probe: ReadinessProbe, options?: WaitForOptions): Promise<void>;
  /** Sends the stop signal, then SIGKILL after `graceSeconds` (default 10); resolves once stopped. */
  stop(id: string, options?: StopOptions): Promise<void>;
  /** Sends a signal by name (default `SIGKILL`); other signals need capability `signals`. */
  kill(id: string, signalName?: string, options?: CallOptions): Promise<void>;
  /** Removes a container; a running one only with `force` (else a ConflictError). */
  remove(id: string, options?: CallOptions & { force?: boolean }): Promise<void>;
  /** Freeze every process of the container (capability `pause`). */
  pause(id: string, options?: CallOptions): Promise<void>;
  /** Resumes a paused container (capability `pause`). */
  unpause(id: string, options?: CallOptions): Promise<void>;
  /** One sample of the container's resource use (capability `stats`). */
  stats(id: string, options?: CallOptions): Promise<ContainerStats>;
  /**
   * The daemon's events from now on, about containers with every label in `labels` (capability
   * `events`); ends when `signal` fires or the iteration is stopped.
   */
  events(options?: CallOptions & { labels?: Record<string, string> }): AsyncIterable<RuntimeEvent>;
  /** Closes the connections to the daemon; the Runtime is not to be used afterwards. */
  close(): Promise<void>;
}
