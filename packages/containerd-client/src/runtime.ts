// The runtime-core Runtime over containerd: container records and tasks through containerd's API, images
// pulled client-side (pull.ts), and logs kept by berth's logger, since containerd keeps none
// (task-log.ts). A task is not deleted when it exits, so inspect() can report the exit code; remove()
// deletes it with the container, its snapshot and its log.
//
// Like the rest of this package it runs on the daemon's host: the shim starts this process's node binary
// with bin/logger.mjs, log files are local paths, and create() reads the image's /etc/passwd from a
// mounted snapshot.
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
import {
  AbortedError,
  type BerthError,
  type Capabilities,
  ConflictError,
  type ContainerInfo,
  type ContainerSpec,
  type ContainerStats,
  checkCallOptions,
  checkCreateArgs,
  checkEventsOptions,
  checkExecArgs,
  checkIdCall,
  checkKillArgs,
  checkListOptions,
  checkLogsArgs,
  checkPullArgs,
  checkRemoveArgs,
  checkRunArgs,
  checkStopArgs,
  type ExecOptions,
  type ExecResult,
  type ExitStatus,
  envList,
  isBerthError,
  type LogEntry,
  type LogsOptions,
  NotFoundError,
  type PullProgress,
  parseImageRef,
  type RunOptions,
  type RunResult,
  type Runtime,
  type RuntimeEvent,
  type RuntimeInfo,
  type PullOptions as RuntimePullOptions,
  type StopOptions,
  TimeoutError,
  ValidationError,
} from "@berth/runtime-core";
import { decodeCgroupMetrics } from "./cgroup-metrics.js";
import { ContainerdClient, type ContainerdClientOptions } from "./client.js";
import { checkContainerId, checkSupported, containerSpecOpts } from "./container-spec.js";
import { type ContainerdEvent, subscribeEvents } from "./events.js";
import type { Container as ContainerRecord } from "./generated/github.com/containerd/containerd/api/services/containers/v1/containers.js";
import { type Process, Status } from "./generated/github.com/containerd/containerd/api/types/task/task.js";
import type { Any } from "./generated/google/protobuf/any.js";
import { DEFAULT_SNAPSHOTTER, getImage } from "./image.js";
import { type PullEvent, type PullOptions, type PullVia, pullProgress } from "./pull.js";
import { parsePlatform } from "./registry/platform.js";
import {
  Container,
  createContainer,
  createTask,
  execInTask,
  parseSpec,
  type RuntimeOptions,
  signalNumber,
} from "./run.js";
import { LOGGER_DRAIN_TIMEOUT_MS, loggerUri, TaskLog } from "./task-log.js";

/** Options of ContainerdRuntime. Every field is optional. */
export interface ContainerdRuntimeOptions {
  /** Where task logs are written, in a folder per namespace (default /var/lib/berth/containerd/logs).
   *  A runtime reads and writes a container's log only at <logDir>/<namespace>/<id>/container.log, never
   *  through a symlink: a container record naming another path (made by a runtime with another logDir, or
   *  rewritten by another client of the socket) is refused with a ValidationError, and remove() leaves it. */
  logDir?: string;
  /** The OCI runtime of new containers (shim, runc binary and root). */
  runtime?: RuntimeOptions;
  /** The snapshotter images are unpacked into and containers run on (default "overlayfs"). */
  snapshotter?: string;
  /** Registry settings for pulls (insecure registries, credentials...), and `via`: who pulls by default
   *  (berth, "client", unless "transfer": containerd's Transfer service, on containerd 1.7+). */
  registry?: Omit<PullOptions, "signal" | "platform" | "name" | "unpack" | "snapshotter">;
  /** The node binary the shim runs the logger with (default: this process's). */
  node?: string;
}

/** Where ContainerdRuntime writes task logs unless `logDir` (or BERTH_CONTAINERD_LOG_DIR) says otherwise. */
export const DEFAULT_LOG_DIR = "/var/lib/berth/containerd/logs";

type Call = { signal?: AbortSignal | undefined };
const opt = (o: Call | undefined) => (o?.signal ? { signal: o.signal } : {});
/** Where a call's arguments go, for their ValidationError. */
const at = (operation: string) => ({ operation, backend: "containerd" });

/** Our data in a container record's extensions (hidden from labels). */
const EXT_META = "berth.containerd.runtime";
/** How many containers' labels events() remembers for filtering, deleted ones included. */
const REMEMBERED_LABELS = 4096;
const EXT_META_TYPE = "berth.dev/containerd-runtime/v1";
const EXT_STARTED = "berth.containerd.started-at";
const EXT_TIME_TYPE = "berth.dev/time";

interface Meta {
  logPath?: string;
  stopSignal?: string;
}

const jsonAny = (typeUrl: string, value: unknown): Any => ({
  typeUrl,
  value: Buffer.from(JSON.stringify(value)),
});
function readJsonAny<T>(any: Any | undefined): T | undefined {
  if (!any) return undefined;
  try {
    return JSON.parse(Buffer.from(any.value).toString("utf8")) as T;
  } catch {
    return undefined;
  }
}

const isNotFound = (err: unknown) => isBerthError(err) && err.code === "NotFound";
const ignoreNotFound = (err: unknown) => {
  if (!isNotFound(err)) throw err;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function aborted(operation: string, signal: AbortSignal | undefined, cause?: unknown): AbortedError {
  return new AbortedError(`${operation}: aborted`, {
    operation,
    backend: "containerd",
    cause: cause ?? signal?.reason,
  });
}
function throwIfAborted(operation: string, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw aborted(operation, signal);
}

/** Quoted for containerd's filter syntax (Go string syntax). */
const quote = (s: string) => JSON.stringify(s);

/** `labels."k"=="v",...`: every label must match (a comma is AND in one filter). */
export function labelFilter(labels: Record<string, string> | undefined): string[] {
  const parts = Object.entries(labels ?? {}).map(([k, v]) => `labels.${quote(k)}==${quote(v)}`);
  return parts.length ? [parts.join(",")] : [];
}

const live = (s: Status | undefined) => s === Status.RUNNING || s === Status.PAUSED || s === Status.PAUSING;

function stateOf(task: Process | undefined): ContainerInfo["state"] {
  switch (task?.status) {
    case undefined:
    case Status.CREATED:
      return "created";
    case Status.RUNNING:
      return "running";
    case Status.PAUSED:
    case Status.PAUSING:
      return "paused";
    case Status.STOPPED:
      return "exited";
    default:
      return "unknown";
  }
}

/** A Date, unless it is Go's zero time (0001-01-01) or the epoch. */
const realDate = (d: Date | undefined) => (d && d.getTime() > 0 ? d : undefined);

function randomId(): string {
  return randomBytes(32).toString("hex");
}

/** PullEvent as runtime-core's PullProgress (the lease event is internal and skipped). */
export function pullProgressOf(e: PullEvent): PullProgress | undefined {
  switch (e.type) {
    case "resolved":
      return { id: e.digest, status: "resolved" };
    case "blob-exists":
      return { id: e.digest, status: "exists", current: e.size, total: e.size };
    case "blob-progress":
      return { id: e.digest, status: "downloading", current: e.offset, total: e.size };
    case "blob-done":
      return { id: e.digest, status: "downloaded", current: e.size, total: e.size };
    case "layer-unpacked":
      return { id: e.digest, status: "unpacked" };
    case "done":
      return { id: e.image.name, status: "pulled" };
    default:
      return undefined;
  }
}

/** containerd's /containers/* and /tasks/* events as RuntimeEvents (others: undefined). */
export function runtimeEventOf(e: ContainerdEvent): RuntimeEvent | undefined {
  const m = /^\/(containers|tasks)\/(.+)$/.exec(e.topic);
  if (!m) return undefined;
  const type = m[1] === "containers" ? "container" : "task";
  const ev = (e.event ?? {}) as Record<string, unknown>;
  const id = (type === "container" ? ev.id : ev.containerId) as string | undefined;
  const attributes: Record<string, string> = {};
  const put = (key: string, v: unknown) => {
    if (v instanceof Date) attributes[key] = v.toISOString();
    else if (typeof v === "string" ? v !== "" : typeof v === "number") attributes[key] = String(v);
  };
  put("image", ev.image);
  put("pid", ev.pid);
  if (e.topic === "/tasks/exit" || e.topic === "/tasks/delete") {
    put("exitCode", ev.exitStatus);
    put("exitedAt", ev.exitedAt);
  }
  // An exec'd process: containerd's `id` (TaskExit, TaskDelete) or `execId`.
  put("execId", ev.execId ?? (type === "task" && ev.id !== id ? ev.id : undefined));
  return {
    time: e.timestamp ?? new Date(),
    type,
    action: m[2] as string,
    ...(id ? { id } : {}),
    ...(Object.keys(attributes).length ? { attributes } : {}),
  };
}

async function collectBytes(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

export class ContainerdRuntime implements Runtime {
  readonly backend = "containerd";
  readonly capabilities: Capabilities = {
    // containerd has no networking of its own: no port publishing, no bridge (CNI is CRI's).
    ports: false,
    bridgeNetwork: false,
    tmpfs: true,
    cpuLimit: true,
    memoryLimit: true,
    hostNetwork: true,
    signals: true,
    stats: true,
    events: true,
    execStdin: true,
    tty: true,
    pause: true,
  };
  /** The folder task logs are written under (a folder per namespace). */
  readonly logDir: string;
  readonly #options: ContainerdRuntimeOptions;

  constructor(
    /** The gRPC client the adapter calls (usable directly for what the Runtime does not cover). */
    readonly client: ContainerdClient,
    options: ContainerdRuntimeOptions = {},
  ) {
    this.#options = options;
    this.logDir = options.logDir ?? DEFAULT_LOG_DIR;
  }

  /** A runtime on CONTAINERD_ADDRESS and CONTAINERD_NAMESPACE (else the defaults). */
  static fromEnv(
    env: NodeJS.ProcessEnv = process.env,
    options: ContainerdRuntimeOptions & { client?: ContainerdClientOptions } = {},
  ): ContainerdRuntime {
    return new ContainerdRuntime(ContainerdClient.fromEnv(env, options.client), options);
  }

  get #snapshotter(): string {
    return this.#options.snapshotter ?? DEFAULT_SNAPSHOTTER;
  }

  async #record(id: string, options?: Call): Promise<ContainerRecord> {
    const { container } = await this.client.containers.get({ id }, opt(options));
    if (!container) {
      throw new NotFoundError(`container ${id} not found`, {
        operation: "Containers.Get",
        backend: "containerd",
      });
    }
    return container;
  }

  /** The container's task, or undefined when it has none. */
  async #task(id: string, options?: Call): Promise<Process | undefined> {
    try {
      return (await this.client.tasks.get({ containerId: id }, opt(options))).process;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  #meta(c: ContainerRecord): Meta {
    return readJsonAny<Meta>(c.extensions[EXT_META]) ?? {};
  }

  /**
   * The container's log, where this runtime keeps it. The path the record names is anyone's to write who
   * has the containerd socket: it is only checked against that place, never used (it would let a record
   * make start() append to, and remove() delete, any file).
   */
  #log(c: ContainerRecord, operation: string): TaskLog {
    const own = this.#logPath(c.id);
    const named: unknown = this.#meta(c).logPath;
    if (named !== undefined && (typeof named !== "string" || resolve(named) !== resolve(own))) {
      throw new ValidationError(
        `${operation}: container ${c.id} names its log at ${JSON.stringify(named)}, not ${own} in this ` +
          `runtime's log directory ${this.logDir}; logs are read and written only there (was the container ` +
          "made by a runtime with another logDir, or its record rewritten by another client?)",
        { operation, backend: "containerd" },
      );
    }
    return new TaskLog(own, this.logDir);
  }

  /** A folder per container, so that watching it (the logger, a follower) sees only this one's files. */
  #logPath(id: string): string {
    return join(this.logDir, this.client.namespace, id, "container.log");
  }

  async info(options?: Call): Promise<RuntimeInfo> {
    options = checkCallOptions(at("info"), options);
    const v = await this.client.version.version({}, opt(options));
    let platform: { os: string; architecture: string } | undefined;
    try {
      const { plugins } = await this.client.introspection.plugins(
        { filters: ['type=="io.containerd.runtime.v2"'] },
        opt(options),
      );
      platform = plugins.flatMap((p) => p.platforms)[0];
    } catch {
      // Platforms are a nicety; the version is what counts.
    }
    return {
      backend: "containerd",
      name: "containerd",
      version: v.version,
      ...(platform?.os ? { os: platform.os } : {}),
      ...(platform?.architecture ? { arch: platform.architecture } : {}),
    };
  }

  /** `via: "transfer"`: containerd pulls, through its Transfer service (see PullVia). */
  async pull(image: string, options: RuntimePullOptions & { via?: PullVia } = {}): Promise<void> {
    const [ref, checked] = checkPullArgs(at("pull"), image, options);
    const events = pullProgress(this.client, ref, {
      ...this.#options.registry,
      ...opt(checked),
      ...(options.via ? { via: options.via } : {}),
      ...(this.#options.snapshotter ? { snapshotter: this.#options.snapshotter } : {}),
      ...(checked.auth ? { credentials: checked.auth } : {}),
      ...(checked.platform ? { platform: parsePlatform(checked.platform) } : {}),
    });
    for await (const e of events) {
      const progress = pullProgressOf(e);
      if (progress) checked.onProgress?.(progress);
    }
  }

  /** Pull unless the image is there. */
  async #ensureImage(image: string, options: RuntimePullOptions): Promise<void> {
    const name = parseImageRef(image).toString();
    try {
      await getImage(this.client, name, {
        ...opt(options),
        ...(options.platform ? { platform: parsePlatform(options.platform) } : {}),
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.pull(image, options);
    }
  }

  /** Check what create() refuses before anything reaches the daemon (the spec's shape is checked). */
  #check(spec: ContainerSpec): void {
    checkSupported(spec);
    if (spec.name !== undefined) checkContainerId(spec.name);
  }

  async create(spec: ContainerSpec, options?: Call): Promise<string> {
    [spec, options] = checkCreateArgs(at("create"), spec, options);
    this.#check(spec);
    const id = spec.name ?? randomId();
    await this.#create(id, spec);
    if (options?.signal?.aborted) {
      await this.#destroy(id).catch(() => {});
      throw aborted("create", options.signal);
    }
    return id;
  }

  /** Create container `id`: either it is created whole, or it throws and leaves nothing. */
  async #create(id: string, spec: ContainerSpec, platform?: string): Promise<void> {
    try {
      await this.#record(id);
      throw new ConflictError(`a container named ${id} already exists`, {
        operation: "create",
        backend: "containerd",
      });
    } catch (err) {
      ignoreNotFound(err);
    }
    const info = await getImage(
      this.client,
      parseImageRef(spec.image).toString(),
      platform ? { platform: parsePlatform(platform) } : {},
    );
    const opts = containerSpecOpts(spec, info.config, id);
    const log = new TaskLog(this.#logPath(id), this.logDir);
    const stopSignal = info.config.config?.StopSignal;
    const meta: Meta = { logPath: log.path, ...(stopSignal ? { stopSignal } : {}) };
    // A new container starts with an empty log, whatever a container of that name left before.
    await log.create({ truncate: true }).catch((err: Error) => {
      throw new ValidationError(`the log directory ${this.logDir} cannot be written: ${err.message}`, {
        operation: "create",
        backend: "containerd",
        cause: err,
      });
    });
    try {
      await createContainer(this.client, info, id, {
        spec: opts,
        snapshotter: this.#snapshotter,
        labels: spec.labels ?? {},
        extensions: { [EXT_META]: jsonAny(EXT_META_TYPE, meta) },
        ...(this.#options.runtime ? { runtime: this.#options.runtime } : {}),
      });
    } catch (err) {
      await log.remove();
      throw err;
    }
  }

  async start(id: string, options?: Call): Promise<void> {
    [id, options] = checkIdCall(at("start"), id, options);
    const c = await this.#record(id, options);
    const log = this.#log(c, "start");
    const task = await this.#task(id, options);
    if (live(task?.status)) return;
    // An exited (or never started) task goes: containerd runs a container again with a new task.
    if (task) await this.client.tasks.delete({ containerId: id }).catch(ignoreNotFound);
    await log.prepareStart();
    const terminal = parseSpec(c.spec).process?.terminal ?? false;
    const uri = loggerUri(log.path, this.#options.node ? { node: this.#options.node } : {});
    await createTask(this.client, id, { stdout: uri, stderr: uri, terminal });
    try {
      // The shim waited for the logger: one that could not start left its reason.
      const loggerError = await log.startError();
      if (loggerError) throw loggerError;
      await this.client.tasks.start({ containerId: id });
      await this.#markStarted(id);
      throwIfAborted("start", options.signal);
    } catch (err) {
      await this.client.tasks.kill({ containerId: id, signal: 9, all: true }).catch(() => {});
      await this.client.tasks.wait({ containerId: id }, { timeout: 10_000 }).catch(() => {});
      await this.client.tasks.delete({ containerId: id }).catch(() => {});
      throw err;
    }
  }

  /** When the task was started, for inspect()'s startedAt (containerd keeps no such time). */
  async #markStarted(id: string): Promise<void> {
    await this.client.containers
      .update({
        container: { id, extensions: { [EXT_STARTED]: jsonAny(EXT_TIME_TYPE, new Date().toISOString()) } },
        updateMask: [`extensions.${EXT_STARTED}`],
      })
      .catch(() => {});
  }

  /**
   * run() of a container it removes afterwards: the output comes straight from the task's FIFOs, as with
   * `ctr run`, and no logger process or log file is made (nobody can ask for the logs of a container
   * that is gone when run() returns). A logger process costs more CPU than the rest of a short run.
   */
  async #runThroughFifos(id: string, options: RunOptions): Promise<RunResult> {
    const signal = options.signal;
    const c = await this.#record(id, opt(options));
    const spec = parseSpec(c.spec);
    // Not cut short by the signal: containerd would go on creating the task (and its shim) after a
    // cancelled call, and the cleanup would miss it. The abort is checked once the task exists.
    const task = await new Container(this.client, id, c.snapshotter, c.snapshotKey, spec).newTask({
      terminal: spec.process?.terminal ?? false,
    });
    const onAbort = () => {
      task.kill("SIGKILL", { all: true }).catch(() => {});
    };
    try {
      const out: Uint8Array[] = [];
      const err: Uint8Array[] = [];
      // Read from before the start: nothing is written to the FIFOs until then.
      const read = (stream: Readable, name: "stdout" | "stderr") =>
        new Promise<void>((resolve, reject) => {
          stream.on("data", (data: Buffer) => {
            (name === "stderr" ? err : out).push(data);
            options.onOutput?.({ stream: name, data });
          });
          stream.once("end", resolve);
          stream.once("error", reject);
        });
      const reading = Promise.all([read(task.stdout, "stdout"), read(task.stderr, "stderr")]);
      reading.catch(() => {});
      signal?.addEventListener("abort", onAbort, { once: true });
      throwIfAborted("run", signal);
      await task.start();
      await this.#markStarted(id);
      // The streams end once the process has exited and the shim has written everything.
      const { exitCode } = await task.wait();
      await reading;
      throwIfAborted("run", signal);
      await task.delete();
      await this.remove(id, { force: true });
      return { id, exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
    } finally {
      signal?.removeEventListener("abort", onAbort);
      await task.io.cleanup();
    }
  }

  async run(spec: ContainerSpec, options: RunOptions = {}): Promise<RunResult> {
    [spec, options] = checkRunArgs(at("run"), spec, options);
    this.#check(spec);
    const signal = options.signal;
    if (options.pull !== false) await this.#ensureImage(spec.image, options);
    throwIfAborted("run", signal);
    const id = spec.name ?? randomId();
    await this.#create(id, spec, options.platform);
    // From here on, whatever happens, an aborted or failed run removes what it created.
    try {
      throwIfAborted("run", signal);
      if (options.remove !== false) return await this.#runThroughFifos(id, options);
      await this.start(id, opt(options));
      const out: Uint8Array[] = [];
      const err: Uint8Array[] = [];
      for await (const e of this.#follow(id, opt(options), 100)) {
        (e.stream === "stderr" ? err : out).push(e.data);
        options.onOutput?.(e);
      }
      const { exitCode } = await this.wait(id, opt(options));
      if (options.remove !== false) await this.remove(id, { force: true });
      return { id, exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
    } catch (e) {
      await this.#destroy(id).catch(() => {});
      if (signal?.aborted && !(isBerthError(e) && e.code === "Aborted")) throw aborted("run", signal, e);
      throw e;
    }
  }

  async inspect(id: string, options?: Call): Promise<ContainerInfo> {
    [id, options] = checkIdCall(at("inspect"), id, options);
    const c = await this.#record(id, options);
    return this.#info(c, await this.#task(id, options));
  }

  #info(c: ContainerRecord, task: Process | undefined): ContainerInfo {
    const state = stateOf(task);
    const created = realDate(c.createdAt);
    const startedIso = readJsonAny<string>(c.extensions[EXT_STARTED]);
    const started = state !== "created" && startedIso ? realDate(new Date(startedIso)) : undefined;
    const finished = state === "exited" ? realDate(task?.exitedAt) : undefined;
    return {
      id: c.id,
      name: c.id,
      image: c.image,
      state,
      ...(state === "exited" ? { exitCode: task?.exitStatus ?? 0 } : {}),
      ...(created ? { createdAt: created } : {}),
      ...(started ? { startedAt: started } : {}),
      ...(finished ? { finishedAt: finished } : {}),
      ...((state === "running" || state === "paused") && task?.pid ? { pid: task.pid } : {}),
      labels: { ...c.labels },
    };
  }

  async list(
    options: Call & { labels?: Record<string, string>; all?: boolean } = {},
  ): Promise<ContainerInfo[]> {
    options = checkListOptions(at("list"), options);
    const { containers } = await this.client.containers.list(
      { filters: labelFilter(options.labels) },
      opt(options),
    );
    if (containers.length === 0) return [];
    const { tasks } = await this.client.tasks.list({}, opt(options));
    const byId = new Map(tasks.map((t) => [t.containerId || t.id, t]));
    const infos = containers.map((c) => this.#info(c, byId.get(c.id)));
    return options.all ? infos : infos.filter((i) => i.state === "running" || i.state === "paused");
  }

  async wait(id: string, options?: Call): Promise<ExitStatus> {
    [id, options] = checkIdCall(at("wait"), id, options);
    for (;;) {
      try {
        const r = await this.client.tasks.wait({ containerId: id }, opt(options));
        return { exitCode: r.exitStatus, ...(realDate(r.exitedAt) ? { finishedAt: r.exitedAt } : {}) };
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      // No task: the container is not started yet (or does not exist: NotFoundError).
      await this.#record(id, options);
      await sleep(250);
      throwIfAborted("wait", options?.signal);
    }
  }

  async *logs(id: string, options: LogsOptions = {}): AsyncIterable<LogEntry> {
    [id, options] = checkLogsArgs(at("logs"), id, options);
    if (options.follow) {
      yield* this.#follow(id, options);
      return;
    }
    const log = this.#log(await this.#record(id, options), "logs");
    // Exited: make sure the logger has written everything before reading.
    if ((await this.#task(id, options))?.status === Status.STOPPED) await log.settle();
    yield* log.read({
      ...opt(options),
      ...(options.since ? { since: options.since } : {}),
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
    });
  }

  /** The log, followed until the task has stopped and the logger has written all of it. */
  async *#follow(id: string, options: LogsOptions = {}, pollInterval = 250): AsyncGenerator<LogEntry> {
    const log = this.#log(await this.#record(id, options), "logs");
    let drainAskedAt: number | undefined;
    const until = async (): Promise<boolean> => {
      const task = await this.#task(id);
      if (!task) {
        // Never started (keep waiting), task deleted (its logger finished), or container removed.
        const gone = await this.#record(id).then(
          () => false,
          (err) => (isNotFound(err) ? true : Promise.reject(err)),
        );
        return gone || log.isDone();
      }
      if (task.status !== Status.STOPPED) return false;
      if (await log.isDone()) return true;
      if (drainAskedAt === undefined) {
        drainAskedAt = Date.now();
        await log.requestDrain();
        return false;
      }
      // A logger that never answers (killed, say) must not keep the reader forever.
      return Date.now() - drainAskedAt > LOGGER_DRAIN_TIMEOUT_MS;
    };
    yield* log.read({
      follow: true,
      until,
      pollInterval,
      ...opt(options),
      ...(options.since ? { since: options.since } : {}),
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
    });
  }

  async exec(id: string, command: string[], options: ExecOptions = {}): Promise<ExecResult> {
    [id, command, options] = checkExecArgs(at("exec"), id, command, options);
    const signal = options.signal;
    await this.#record(id, options);
    const task = await this.#task(id, options);
    if (task?.status !== Status.RUNNING) {
      throw new ConflictError(`container ${id} is not running`, { operation: "exec", backend: "containerd" });
    }
    const proc = await execInTask(this.client, id, command, {
      extraEnv: envList(options.env),
      ...(options.workdir ? { cwd: options.workdir } : {}),
      ...(options.user ? { user: options.user } : {}),
      stdin: options.stdin !== undefined,
      terminal: options.tty ?? false,
    });
    // Armed before the start, so a process that never reads its stdin still times out.
    let stopped: BerthError | undefined;
    const stop = (err: BerthError) => {
      stopped ??= err;
      proc.kill("SIGKILL").catch(() => {});
    };
    const onAbort = () => stop(aborted("exec", signal));
    const timer =
      options.timeout === undefined
        ? undefined
        : setTimeout(() => {
            const message = `exec: no exit after ${options.timeout} ms`;
            stop(new TimeoutError(message, { operation: "exec", backend: "containerd" }));
          }, options.timeout);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const stdout = collectBytes(proc.stdout);
      const stderr = collectBytes(proc.stderr);
      stdout.catch(() => {});
      stderr.catch(() => {});
      await proc.start();
      if (stopped) proc.kill("SIGKILL").catch(() => {}); // stopped while it was starting
      if (options.stdin !== undefined) {
        const input = options.stdin;
        const stdin = proc.stdin;
        stdin?.on("error", () => {}); // the process may exit without reading it all
        // Not awaited: the process may exit, or be stopped, before it has read everything.
        (async () => {
          stdin?.write(input);
          await proc.closeStdin();
        })().catch(() => {});
      }
      const { exitCode } = await proc.wait();
      if (stopped) throw stopped;
      return { exitCode, stdout: await stdout, stderr: await stderr };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      await proc.delete().catch(() => {});
    }
  }

  async stop(id: string, options: StopOptions = {}): Promise<void> {
    [id, options] = checkStopArgs(at("stop"), id, options);
    const c = await this.#record(id, options);
    const task = await this.#task(id, options);
    if (!live(task?.status)) return;
    if (task?.status !== Status.RUNNING) await this.client.tasks.resume({ containerId: id }).catch(() => {});
    const signal = signalNumber(options.stopSignal ?? this.#meta(c).stopSignal ?? "SIGTERM");
    const grace = Math.max(0, options.timeout ?? 10) * 1000;
    if (grace > 0) {
      await this.client.tasks.kill({ containerId: id, signal }, opt(options)).catch(ignoreNotFound);
      if (await this.#exitsWithin(id, grace, options.signal)) return;
    }
    await this.client.tasks
      .kill({ containerId: id, signal: 9, all: true }, opt(options))
      .catch(ignoreNotFound);
    await this.client.tasks.wait({ containerId: id }, opt(options));
  }

  /** Whether the task exits within `ms`. The grace period is timed here: past a gRPC deadline,
   *  containerd may answer UNKNOWN "context deadline exceeded" rather than DEADLINE_EXCEEDED. */
  async #exitsWithin(id: string, ms: number, signal: AbortSignal | undefined): Promise<boolean> {
    const ac = new AbortController();
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      ac.abort();
    }, ms);
    const onAbort = () => ac.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await this.client.tasks.wait({ containerId: id }, { signal: ac.signal });
      return true;
    } catch (err) {
      if (late && !signal?.aborted) return false;
      throw signal?.aborted ? aborted("stop", signal, err) : err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async kill(id: string, signal = "SIGKILL", options?: Call): Promise<void> {
    [id, signal, options] = checkKillArgs(at("kill"), id, signal, options);
    const number = signalNumber(signal);
    await this.#record(id, options);
    const notRunning = () =>
      new ConflictError(`container ${id} is not running`, { operation: "kill", backend: "containerd" });
    if (!live((await this.#task(id, options))?.status)) throw notRunning();
    try {
      await this.client.tasks.kill({ containerId: id, signal: number }, opt(options));
    } catch (err) {
      throw isNotFound(err) ? notRunning() : err;
    }
  }

  async remove(id: string, options: Call & { force?: boolean } = {}): Promise<void> {
    [id, options] = checkRemoveArgs(at("remove"), id, options);
    await this.#record(id, options);
    const task = await this.#task(id, options);
    if (live(task?.status) && !options.force) {
      throw new ConflictError(`container ${id} is running: stop it first, or remove it with force`, {
        operation: "remove",
        backend: "containerd",
      });
    }
    await this.#destroy(id);
  }

  /** Kill the task if any, delete it (the shim stops the logger), the record, the snapshot, the log. */
  async #destroy(id: string): Promise<void> {
    const c = await this.#record(id).catch((err) => {
      ignoreNotFound(err);
      return undefined;
    });
    if (!c) return;
    await new Container(this.client, id, c.snapshotter, c.snapshotKey, parseSpec(c.spec)).delete();
    // This runtime's own log of the container only, whatever the record names.
    await new TaskLog(this.#logPath(id), this.logDir).remove();
  }

  async pause(id: string, options?: Call): Promise<void> {
    [id, options] = checkIdCall(at("pause"), id, options);
    await this.#running(id, "pause", options);
    await this.client.tasks.pause({ containerId: id }, opt(options));
  }

  async unpause(id: string, options?: Call): Promise<void> {
    [id, options] = checkIdCall(at("unpause"), id, options);
    await this.#record(id, options);
    const task = await this.#task(id, options);
    if (task?.status !== Status.PAUSED && task?.status !== Status.PAUSING) {
      throw new ConflictError(`container ${id} is not paused`, {
        operation: "unpause",
        backend: "containerd",
      });
    }
    await this.client.tasks.resume({ containerId: id }, opt(options));
  }

  async #running(id: string, operation: string, options?: Call): Promise<Process> {
    await this.#record(id, options);
    const task = await this.#task(id, options);
    if (task?.status !== Status.RUNNING) {
      throw new ConflictError(`container ${id} is not running`, { operation, backend: "containerd" });
    }
    return task;
  }

  async stats(id: string, options?: Call): Promise<ContainerStats> {
    [id, options] = checkIdCall(at("stats"), id, options);
    await this.#record(id, options);
    if (!live((await this.#task(id, options))?.status)) {
      throw new ConflictError(`container ${id} is not running`, {
        operation: "stats",
        backend: "containerd",
      });
    }
    const { metrics } = await this.client.tasks.metrics({ filters: [`id==${quote(id)}`] }, opt(options));
    const m = metrics.find((x) => x.id === id) ?? metrics[0];
    if (!m?.data) {
      throw new NotFoundError(`no metrics for container ${id}`, {
        operation: "Tasks.Metrics",
        backend: "containerd",
      });
    }
    const { pidsLimit: _, ...d } = decodeCgroupMetrics(m.data.typeUrl, m.data.value);
    return { time: m.timestamp ?? new Date(), ...d };
  }

  async *events(options: Call & { labels?: Record<string, string> } = {}): AsyncIterable<RuntimeEvent> {
    options = checkEventsOptions(at("events"), options);
    const want = Object.entries(options.labels ?? {});
    // Events carry no labels: look each container up once and remember its labels. A deleted
    // container's labels stay remembered (bounded, oldest forgotten first): the shim forwards
    // its task events asynchronously, so on containerd 2.x /tasks/delete can arrive after
    // /containers/delete, when the container can no longer be looked up.
    const labelsOf = new Map<string, Record<string, string>>();
    const remember = (id: string, labels: Record<string, string>) => {
      labelsOf.delete(id);
      labelsOf.set(id, labels);
      if (labelsOf.size > REMEMBERED_LABELS) {
        const oldest = labelsOf.keys().next().value;
        if (oldest !== undefined) labelsOf.delete(oldest);
      }
    };
    const filter = `namespace==${quote(this.client.namespace)},topic~=${quote("^/(containers|tasks)/")}`;
    for await (const e of subscribeEvents(this.client, [filter], opt(options))) {
      const ev = runtimeEventOf(e);
      if (!ev) continue;
      if (want.length) {
        if (!ev.id) continue;
        if (!labelsOf.has(ev.id) || e.topic === "/containers/update") {
          const c = await this.#record(ev.id).catch(() => undefined);
          if (c) remember(ev.id, c.labels);
        }
        const labels = labelsOf.get(ev.id);
        if (!labels || !want.every(([k, v]) => labels[k] === v)) continue;
      }
      yield ev;
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
