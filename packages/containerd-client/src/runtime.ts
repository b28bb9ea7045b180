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
import type * as core from "@berth/runtime-core";
import {
  ConflictError,
  envList,
  NotFoundError,
  parseImageRef,
  TimeoutError,
  ValidationError,
} from "@berth/runtime-core";
import {
  AdapterBase,
  adapterErrors,
  capabilitiesWithout,
  check,
  deadline,
  OutputCollector,
  onAbort,
  runContainer,
  signalOnly,
  sleep,
} from "@berth/runtime-core/internal";
import { decodeCgroupMetrics } from "./cgroup-metrics.js";
import { ContainerdClient, type ContainerdClientOptions } from "./client.js";
import { Container, createContainer, type LoadedContainer } from "./container.js";
import { ignoreNotFound, isNotFound, type RuntimeOptions } from "./container-record.js";
import { checkContainerId, checkSupported, containerSpecOpts } from "./container-spec.js";
import { subscribeEvents } from "./events.js";
import type { Status } from "./generated/github.com/containerd/containerd/api/types/task/task.js";
import { DEFAULT_SNAPSHOTTER, getImage } from "./image.js";
import { type ContainerdPullOptions, type PullVia, pullProgress } from "./pull.js";
import { parsePlatform } from "./registry/platform.js";
import {
  containerInfoOf,
  EXT_META,
  EXT_STARTED,
  eventFilter,
  exited,
  exitStatusOf,
  LabelMemory,
  labelFilter,
  live,
  type Meta,
  metaAny,
  metaOf,
  paused,
  pullProgressOf,
  running,
  runtimeEventOf,
  startedAny,
} from "./runtime-map.js";
import { type ExecProcess, listTasks, signalNumber, Task } from "./task.js";
import { logIo } from "./task-io.js";
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
  registry?: Omit<ContainerdPullOptions, "signal" | "platform" | "name" | "unpack" | "snapshotter">;
  /** The node binary the shim runs the logger with (default: this process's). */
  node?: string;
}

/** Where ContainerdRuntime writes task logs unless `logDir` (or BERTH_CONTAINERD_LOG_DIR) says otherwise. */
export const DEFAULT_LOG_DIR = "/var/lib/berth/containerd/logs";

type Call = { signal?: AbortSignal | undefined };

const errors = adapterErrors("containerd");
const at = errors.at;

function randomId(): string {
  return randomBytes(32).toString("hex");
}

export class ContainerdRuntime extends AdapterBase implements core.Runtime {
  readonly backend = "containerd";
  // containerd has no networking of its own: no port publishing, no bridge (CNI is CRI's).
  readonly capabilities: core.Capabilities = capabilitiesWithout("ports", "bridgeNetwork");
  /** The folder task logs are written under (a folder per namespace). */
  readonly logDir: string;
  readonly #options: ContainerdRuntimeOptions;

  constructor(
    /** The gRPC client the adapter calls (usable directly for what the Runtime does not cover). */
    readonly client: ContainerdClient,
    options: ContainerdRuntimeOptions = {},
  ) {
    super(errors);
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

  #load(id: string, options?: Call): Promise<LoadedContainer> {
    return Container.load(this.client, id, signalOnly(options));
  }

  /**
   * Container `id` and its task, which must be in a state `want` accepts: a ConflictError saying the
   * container `is` otherwise (e.g. "not running").
   */
  async #taskIn(
    id: string,
    operation: string,
    options: Call | undefined,
    want: (s: Status | undefined) => boolean,
    is = "not running",
  ): Promise<{ container: LoadedContainer; task: Task }> {
    const container = await this.#load(id, options);
    const task = await container.task(signalOnly(options));
    if (!task || !want(task.process?.status))
      throw new ConflictError(`container ${id} is ${is}`, at(operation));
    return { container, task };
  }

  /**
   * The container's log, where this runtime keeps it. The path the record names is anyone's to write who
   * has the containerd socket: it is only checked against that place, never used (it would let a record
   * make start() append to, and remove() delete, any file).
   */
  #log(c: LoadedContainer, operation: string): TaskLog {
    const own = this.#logPath(c.id);
    const named: unknown = metaOf(c.record).logPath;
    if (named !== undefined && (typeof named !== "string" || resolve(named) !== resolve(own))) {
      throw new ValidationError(
        `${operation}: container ${c.id} names its log at ${JSON.stringify(named)}, not ${own} in this ` +
          `runtime's log directory ${this.logDir}; logs are read and written only there (was the container ` +
          "made by a runtime with another logDir, or its record rewritten by another client?)",
        at(operation),
      );
    }
    return new TaskLog(own, this.logDir);
  }

  /** A folder per container, so that watching it (the logger, a follower) sees only this one's files. */
  #logPath(id: string): string {
    return join(this.logDir, this.client.namespace, id, "container.log");
  }

  async info(options?: Call): Promise<core.RuntimeInfo> {
    options = check.call(at("info"), options);
    const v = await this.client.version.version({}, signalOnly(options));
    let platform: { os: string; architecture: string } | undefined;
    try {
      const { plugins } = await this.client.introspection.plugins(
        { filters: ['type=="io.containerd.runtime.v2"'] },
        signalOnly(options),
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
  async pull(image: string, options: core.PullOptions & { via?: PullVia } = {}): Promise<void> {
    const [ref, checked] = check.pull(at("pull"), image, options);
    const events = pullProgress(this.client, ref, {
      ...this.#options.registry,
      ...signalOnly(checked),
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
  async #ensureImage(image: string, options: core.PullOptions): Promise<void> {
    const name = parseImageRef(image).toString();
    try {
      await getImage(this.client, name, {
        ...signalOnly(options),
        ...(options.platform ? { platform: parsePlatform(options.platform) } : {}),
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.pull(image, options);
    }
  }

  /** Check what create() refuses before anything reaches the daemon (the spec's shape is checked). */
  #check(spec: core.ContainerSpec): void {
    checkSupported(spec);
    if (spec.name !== undefined) checkContainerId(spec.name);
  }

  async create(spec: core.ContainerSpec, options?: Call): Promise<string> {
    [spec, options] = check.create(at("create"), spec, options);
    this.#check(spec);
    const id = spec.name ?? randomId();
    await this.#create(id, spec);
    if (options?.signal?.aborted) {
      await this.#discard(id);
      throw errors.aborted("create", options.signal);
    }
    return id;
  }

  /** Create container `id`: either it is created whole, or it throws and leaves nothing. */
  async #create(id: string, spec: core.ContainerSpec, platform?: string): Promise<LoadedContainer> {
    if (await Container.find(this.client, id)) {
      throw new ConflictError(`a container named ${id} already exists`, at("create"));
    }
    const info = await getImage(
      this.client,
      parseImageRef(spec.image).toString(),
      platform ? { platform: parsePlatform(platform) } : {},
    );
    const log = new TaskLog(this.#logPath(id), this.logDir);
    const stopSignal = info.config.config?.StopSignal;
    const meta: Meta = { logPath: log.path, ...(stopSignal ? { stopSignal } : {}) };
    // A new container starts with an empty log, whatever a container of that name left before.
    await log.create({ truncate: true }).catch((err: Error) => {
      throw new ValidationError(`the log directory ${this.logDir} cannot be written: ${err.message}`, {
        ...at("create"),
        cause: err,
      });
    });
    try {
      return await createContainer(this.client, info, id, {
        spec: containerSpecOpts(spec, info.config, id),
        snapshotter: this.#snapshotter,
        labels: spec.labels ?? {},
        extensions: { [EXT_META]: metaAny(meta) },
        ...(this.#options.runtime ? { runtime: this.#options.runtime } : {}),
      });
    } catch (err) {
      await log.remove();
      throw err;
    }
  }

  async start(id: string, options?: Call): Promise<void> {
    [id, options] = check.id(at("start"), id, options);
    const c = await this.#load(id, options);
    const log = this.#log(c, "start");
    const old = await c.task(signalOnly(options));
    if (live(old?.process?.status)) return;
    // An exited (or never started) task goes: containerd runs a container again with a new task.
    await old?.delete().catch(ignoreNotFound);
    await log.prepareStart();
    const uri = loggerUri(log.path, this.#options.node ? { node: this.#options.node } : {});
    const task = await c.newTask(logIo(uri, { terminal: c.spec.process?.terminal ?? false }));
    try {
      // The shim waited for the logger: one that could not start left its reason.
      const loggerError = await log.startError();
      if (loggerError) throw loggerError;
      await task.start();
      await this.#markStarted(c);
      errors.throwIfAborted("start", options.signal);
    } catch (err) {
      await task.destroy().catch(() => {});
      throw err;
    }
  }

  /** When the task was started, for inspect()'s startedAt (containerd keeps no such time). */
  async #markStarted(c: Container): Promise<void> {
    await c.setExtension(EXT_STARTED, startedAny(new Date())).catch(() => {});
  }

  async run(spec: core.ContainerSpec, options: core.RunOptions = {}): Promise<core.RunResult> {
    [spec, options] = check.run(at("run"), spec, options);
    this.#check(spec);
    let created!: LoadedContainer;
    return runContainer(errors, options, {
      ensureImage: () => this.#ensureImage(spec.image, options),
      create: async () => {
        created = await this.#create(spec.name ?? randomId(), spec, options.platform);
        return created.id;
      },
      // remove (the default): FIFOs, as `ctr run --rm` (see #runThroughFifos); else the logger.
      execute: (id, output) =>
        options.remove !== false
          ? this.#runThroughFifos(created, output, options.signal)
          : this.#runThroughLog(id, output, options),
      remove: () => this.#destroy(created),
      discard: (id) => this.#discard(id),
    });
  }

  /**
   * run() of a container it removes afterwards: the output comes straight from the task's FIFOs, as with
   * `ctr run`, and no logger process or log file is made (nobody can ask for the logs of a container
   * that is gone when run() returns). A logger process costs more CPU than the rest of a short run.
   */
  async #runThroughFifos(c: Container, output: OutputCollector, signal?: AbortSignal): Promise<number> {
    const task = await c.newTask({ terminal: c.spec.process?.terminal ?? false });
    // Read from before the start: nothing is written to the FIFOs until then.
    const reading = task.readOutput(output);
    reading.catch(() => {});
    const listening = onAbort(signal, () => task.kill("SIGKILL", { all: true }).catch(() => {}));
    try {
      errors.throwIfAborted("run", signal);
      await task.start();
      await this.#markStarted(c);
      // The streams end once the process has exited and the shim has written everything.
      const { exitCode } = await task.wait();
      await reading;
      errors.throwIfAborted("run", signal);
      await task.delete();
      return exitCode;
    } finally {
      listening.dispose();
      await task.io.cleanup();
    }
  }

  /** run() of a container it keeps: started with its logger, the output read from the log. */
  async #runThroughLog(id: string, output: OutputCollector, options: core.RunOptions): Promise<number> {
    await this.start(id, signalOnly(options));
    for await (const e of this.#follow(id, signalOnly(options), 100)) output.push(e);
    return (await this.wait(id, signalOnly(options))).exitCode;
  }

  async inspect(id: string, options?: Call): Promise<core.ContainerInfo> {
    [id, options] = check.id(at("inspect"), id, options);
    const c = await this.#load(id, options);
    const task = await c.task(signalOnly(options));
    return containerInfoOf(c.record, task?.process);
  }

  async list(
    options: Call & { labels?: Record<string, string>; all?: boolean } = {},
  ): Promise<core.ContainerInfo[]> {
    options = check.list(at("list"), options);
    const containers = await Container.list(this.client, labelFilter(options.labels), signalOnly(options));
    if (containers.length === 0) return [];
    const tasks = await listTasks(this.client, signalOnly(options));
    const byId = new Map(tasks.map((t) => [t.containerId || t.id, t]));
    const infos = containers.map((c) => containerInfoOf(c.record, byId.get(c.id)));
    return options.all ? infos : infos.filter((i) => i.state === "running" || i.state === "paused");
  }

  async wait(id: string, options?: Call): Promise<core.ExitStatus> {
    [id, options] = check.id(at("wait"), id, options);
    const task = Task.of(this.client, id);
    for (;;) {
      try {
        return exitStatusOf(await task.wait(signalOnly(options)));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      // No task: the container is not started yet (or does not exist: NotFoundError).
      await this.#load(id, options);
      await sleep(250, options?.signal, () => errors.aborted("wait", options?.signal));
    }
  }

  async *logs(id: string, options: core.LogsOptions = {}): AsyncIterable<core.LogEntry> {
    [id, options] = check.logs(at("logs"), id, options);
    if (options.follow) {
      yield* this.#follow(id, options);
      return;
    }
    const c = await this.#load(id, options);
    const log = this.#log(c, "logs");
    // Exited: make sure the logger has written everything before reading.
    if (exited((await c.task(signalOnly(options)))?.process?.status)) await log.settle();
    yield* log.read({ ...signalOnly(options), ...readOptions(options) });
  }

  /** The log, followed until the task has stopped and the logger has written all of it. */
  async *#follow(
    id: string,
    options: core.LogsOptions = {},
    pollInterval = 250,
  ): AsyncGenerator<core.LogEntry> {
    const c = await this.#load(id, options);
    const log = this.#log(c, "logs");
    let drainAskedAt: number | undefined;
    const until = async (): Promise<boolean> => {
      const task = await c.task();
      // Never started (keep waiting), task deleted (its logger finished), or container removed.
      if (!task) return !(await Container.find(this.client, id)) || log.isDone();
      if (!exited(task.process?.status)) return false;
      if (await log.isDone()) return true;
      if (drainAskedAt === undefined) {
        drainAskedAt = Date.now();
        await log.requestDrain();
        return false;
      }
      // A logger that never answers (killed, say) must not keep the reader forever.
      return Date.now() - drainAskedAt > LOGGER_DRAIN_TIMEOUT_MS;
    };
    yield* log.read({ follow: true, until, pollInterval, ...signalOnly(options), ...readOptions(options) });
  }

  async exec(id: string, command: string[], options: core.ExecOptions = {}): Promise<core.ExecResult> {
    [id, command, options] = check.exec(at("exec"), id, command, options);
    const { task } = await this.#taskIn(id, "exec", options, running);
    const proc = await task.exec(command, {
      extraEnv: envList(options.env),
      ...(options.workdir ? { cwd: options.workdir } : {}),
      ...(options.user ? { user: options.user } : {}),
      stdin: options.stdin !== undefined,
      terminal: options.tty ?? false,
    });
    // Armed before the start, so a process that never reads its stdin still times out.
    const signal = options.signal;
    const limit = deadline(signal, options.timeout);
    let stopped: Error | undefined;
    const listening = onAbort(limit.signal, () => {
      stopped =
        limit.expired && !signal?.aborted
          ? new TimeoutError(`exec: no exit after ${options.timeout} ms`, at("exec"))
          : errors.aborted("exec", signal);
      proc.kill("SIGKILL").catch(() => {});
    });
    try {
      const output = new OutputCollector();
      const reading = proc.readOutput(output);
      reading.catch(() => {});
      await proc.start();
      if (stopped) proc.kill("SIGKILL").catch(() => {}); // stopped while it was starting
      if (options.stdin !== undefined) feedStdin(proc, options.stdin);
      const { exitCode } = await proc.wait();
      if (stopped) throw stopped;
      await reading;
      return { exitCode, ...output.result() };
    } finally {
      listening.dispose();
      limit.dispose();
      await proc.delete().catch(() => {});
    }
  }

  async stop(id: string, options: core.StopOptions = {}): Promise<void> {
    [id, options] = check.stop(at("stop"), id, options);
    const c = await this.#load(id, options);
    const task = await c.task(signalOnly(options));
    if (!task || !live(task.process?.status)) return;
    if (!running(task.process?.status)) await task.resume().catch(() => {});
    const signal = signalNumber(options.signalName ?? metaOf(c.record).stopSignal ?? "SIGTERM");
    const grace = Math.max(0, options.graceSeconds ?? 10) * 1000;
    if (grace > 0) {
      await task.kill(signal, signalOnly(options)).catch(ignoreNotFound);
      if (await this.#exitsWithin(task, grace, options.signal)) return;
    }
    await task.kill(9, { all: true, ...signalOnly(options) }).catch(ignoreNotFound);
    await task.wait(signalOnly(options));
  }

  /** Whether the task exits within `ms`. The grace period is timed here: past a gRPC deadline,
   *  containerd may answer UNKNOWN "context deadline exceeded" rather than DEADLINE_EXCEEDED. */
  async #exitsWithin(task: Task, ms: number, signal: AbortSignal | undefined): Promise<boolean> {
    const limit = deadline(signal, ms);
    try {
      await task.wait(signalOnly(limit));
      return true;
    } catch (err) {
      if (limit.expired && !signal?.aborted) return false;
      throw signal?.aborted ? errors.aborted("stop", signal, err) : err;
    } finally {
      limit.dispose();
    }
  }

  async kill(id: string, signalName = "SIGKILL", options?: Call): Promise<void> {
    [id, signalName, options] = check.kill(at("kill"), id, signalName, options);
    const number = signalNumber(signalName);
    const { task } = await this.#taskIn(id, "kill", options, live);
    try {
      await task.kill(number, signalOnly(options));
    } catch (err) {
      // Exited between the look and the kill.
      throw isNotFound(err) ? new ConflictError(`container ${id} is not running`, at("kill")) : err;
    }
  }

  async remove(id: string, options: Call & { force?: boolean } = {}): Promise<void> {
    [id, options] = check.remove(at("remove"), id, options);
    const c = await this.#load(id, options);
    const task = await c.task(signalOnly(options));
    if (live(task?.process?.status) && !options.force) {
      throw new ConflictError(
        `container ${id} is running: stop it first, or remove it with force`,
        at("remove"),
      );
    }
    await this.#destroy(c);
  }

  /** Kill the task if any, delete it (the shim stops the logger), the record, the snapshot, the log. */
  async #destroy(c: Container): Promise<void> {
    await c.delete();
    // This runtime's own log of the container only, whatever the record names.
    await new TaskLog(this.#logPath(c.id), this.logDir).remove();
  }

  /** Destroy container `id` if it is there, after a failure or an abort; never throws. */
  async #discard(id: string): Promise<void> {
    const c = await Container.find(this.client, id).catch(() => undefined);
    if (c) await this.#destroy(c).catch(() => {});
  }

  async pause(id: string, options?: Call): Promise<void> {
    [id, options] = check.id(at("pause"), id, options);
    const { task } = await this.#taskIn(id, "pause", options, running);
    await task.pause(signalOnly(options));
  }

  async unpause(id: string, options?: Call): Promise<void> {
    [id, options] = check.id(at("unpause"), id, options);
    const { task } = await this.#taskIn(id, "unpause", options, paused, "not paused");
    await task.resume(signalOnly(options));
  }

  async stats(id: string, options?: Call): Promise<core.ContainerStats> {
    [id, options] = check.id(at("stats"), id, options);
    const { task } = await this.#taskIn(id, "stats", options, live);
    const m = await task.metric(signalOnly(options));
    if (!m?.data) throw new NotFoundError(`no metrics for container ${id}`, at("Tasks.Metrics"));
    const { pidsLimit: _, ...d } = decodeCgroupMetrics(m.data.typeUrl, m.data.value);
    return { time: m.timestamp ?? new Date(), ...d };
  }

  async *events(options: Call & { labels?: Record<string, string> } = {}): AsyncIterable<core.RuntimeEvent> {
    options = check.events(at("events"), options);
    const want = Object.entries(options.labels ?? {});
    const labels = new LabelMemory();
    for await (const e of subscribeEvents(
      this.client,
      [eventFilter(this.client.namespace)],
      signalOnly(options),
    )) {
      const ev = runtimeEventOf(e);
      if (!ev) continue;
      if (want.length) {
        if (!ev.id) continue;
        if (!labels.has(ev.id) || e.topic === "/containers/update") {
          const c = await Container.load(this.client, ev.id).catch(() => undefined);
          if (c) labels.remember(ev.id, c.record.labels);
        }
        if (!labels.match(ev.id, want)) continue;
      }
      yield ev;
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/** The since/tail of a logs() call, as TaskLog.read() takes them. */
function readOptions(options: core.LogsOptions): { since?: Date; tail?: number } {
  return {
    ...(options.since ? { since: options.since } : {}),
    ...(options.tail !== undefined ? { tail: options.tail } : {}),
  };
}

/** Writes `input` to an exec's stdin and closes it, unawaited: the process may exit, or be stopped,
 *  before it has read everything. */
function feedStdin(proc: ExecProcess, input: string | Uint8Array): void {
  const stdin = proc.stdin;
  stdin?.on("error", () => {}); // the process may exit without reading it all
  (async () => {
    stdin?.write(input);
    await proc.closeStdin();
  })().catch(() => {});
}
