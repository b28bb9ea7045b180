// The Runtime interface: container work in users' words, the same on every backend. Each client
// package implements it in an adapter; what a backend cannot do it declares in `capabilities`, and
// asking for it anyway gives an UnsupportedError instead of a silent no-op.
import type { RegistryCredentials } from "./credentials.js";

export type BackendName = "docker" | "podman" | "containerd" | "cri" | (string & {});

export interface BindMount {
  type: "bind";
  source: string;
  target: string;
  readonly?: boolean;
}

export interface TmpfsMount {
  type: "tmpfs";
  target: string;
  /** Size limit in bytes. */
  size?: number;
}

export interface PortMapping {
  containerPort: number;
  hostPort?: number;
  hostIp?: string;
  protocol?: "tcp" | "udp";
}

/** A container to create, in terms every backend understands. */
export interface ContainerSpec {
  image: string;
  /** Arguments (Docker's Cmd); with `entrypoint` unset, the image's entrypoint runs them. */
  command?: string[];
  entrypoint?: string[];
  /** KEY=VALUE pairs or a map. */
  env?: Record<string, string> | string[];
  workdir?: string;
  /** "user", "uid", "uid:gid" or "user:group". */
  user?: string;
  labels?: Record<string, string>;
  mounts?: Array<BindMount | TmpfsMount>;
  ports?: PortMapping[];
  /** Memory limit in bytes. */
  memory?: number;
  /** CPU limit in cores (0.5 = half a core). */
  cpus?: number;
  /** "bridge" (the backend's default network), "host", "none". */
  network?: "bridge" | "host" | "none" | (string & {});
  tty?: boolean;
  /** Keep stdin open so `exec`/attach can write to it. */
  stdin?: boolean;
  name?: string;
  /** CRI: run in this existing pod sandbox instead of a new one. */
  pod?: string;
}

export type ContainerState = "created" | "running" | "paused" | "exited" | "unknown" | (string & {});

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  state: ContainerState;
  exitCode?: number;
  createdAt?: Date;
  startedAt?: Date;
  finishedAt?: Date;
  pid?: number;
  ip?: string;
  labels: Record<string, string>;
}

export interface ExitStatus {
  exitCode: number;
  finishedAt?: Date;
}

export interface LogEntry {
  stream: "stdout" | "stderr";
  data: Uint8Array;
  /** Present when the backend records it (timestamps: true, or CRI logs). */
  time?: Date;
}

export interface PullProgress {
  /** Layer or blob this is about, when any. */
  id?: string;
  status: string;
  current?: number;
  total?: number;
}

export interface RuntimeInfo {
  backend: BackendName;
  name: string;
  version: string;
  apiVersion?: string;
  os?: string;
  arch?: string;
}

export interface ContainerStats {
  time: Date;
  cpuNanos?: number;
  memoryBytes?: number;
  memoryLimitBytes?: number;
  pids?: number;
}

export interface RuntimeEvent {
  time: Date;
  type: string;
  action: string;
  id?: string;
  attributes?: Record<string, string>;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface PullOptions extends CallOptions {
  auth?: RegistryCredentials;
  /** "os/arch[/variant]" */
  platform?: string;
  onProgress?: (progress: PullProgress) => void;
}

export interface LogsOptions extends CallOptions {
  follow?: boolean;
  /** Only entries at or after this time. */
  since?: Date;
  /** Only the last N lines. */
  tail?: number;
  timestamps?: boolean;
}

export interface ExecOptions extends CallOptions {
  env?: Record<string, string> | string[];
  workdir?: string;
  user?: string;
  tty?: boolean;
  stdin?: string | Uint8Array;
  /** Milliseconds; past it the call fails with a TimeoutError. */
  timeout?: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

export interface RunOptions extends PullOptions {
  /** Remove the container when it has exited (default true). */
  remove?: boolean;
  /** Pull the image when it is missing (default true). */
  pull?: boolean;
  /** Called with each output entry as it arrives; output is still collected. */
  onOutput?: (entry: LogEntry) => void;
}

export interface RunResult extends ExecResult {
  id: string;
}

export interface StopOptions extends CallOptions {
  /** Seconds to wait after the stop signal before killing (default 10). */
  timeout?: number;
  signal?: AbortSignal;
  stopSignal?: string;
}

/** What a backend can do; a false entry means the matching call throws UnsupportedError. */
export interface Capabilities {
  ports: boolean;
  tmpfs: boolean;
  cpuLimit: boolean;
  memoryLimit: boolean;
  hostNetwork: boolean;
  /** network "bridge": a private network with an IP reachable from the host. */
  bridgeNetwork: boolean;
  /** kill() with any signal (false: only SIGKILL). */
  signals: boolean;
  stats: boolean;
  events: boolean;
  execStdin: boolean;
  tty: boolean;
  /** pause() and unpause(). */
  pause: boolean;
}

export interface Runtime {
  readonly backend: BackendName;
  readonly capabilities: Capabilities;
  info(options?: CallOptions): Promise<RuntimeInfo>;
  pull(image: string, options?: PullOptions): Promise<void>;
  create(spec: ContainerSpec, options?: CallOptions): Promise<string>;
  start(id: string, options?: CallOptions): Promise<void>;
  /** Pull if missing, create, start, wait, collect output, remove (unless remove: false). */
  run(spec: ContainerSpec, options?: RunOptions): Promise<RunResult>;
  inspect(id: string, options?: CallOptions): Promise<ContainerInfo>;
  list(options?: CallOptions & { labels?: Record<string, string>; all?: boolean }): Promise<ContainerInfo[]>;
  wait(id: string, options?: CallOptions): Promise<ExitStatus>;
  logs(id: string, options?: LogsOptions): AsyncIterable<LogEntry>;
  exec(id: string, command: string[], options?: ExecOptions): Promise<ExecResult>;
  stop(id: string, options?: StopOptions): Promise<void>;
  kill(id: string, signal?: string, options?: CallOptions): Promise<void>;
  remove(id: string, options?: CallOptions & { force?: boolean }): Promise<void>;
  /** Freeze every process of the container (capability `pause`). */
  pause(id: string, options?: CallOptions): Promise<void>;
  unpause(id: string, options?: CallOptions): Promise<void>;
  stats(id: string, options?: CallOptions): Promise<ContainerStats>;
  events(options?: CallOptions & { labels?: Record<string, string> }): AsyncIterable<RuntimeEvent>;
  close(): Promise<void>;
}
