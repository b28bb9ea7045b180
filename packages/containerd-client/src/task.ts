// Tasks: a container's init process and the processes exec'd into it, each with its IO (task-io.ts).
// With container.ts, the only code that calls containerd's tasks service.
import { randomUUID } from "node:crypto";
import { constants as osConstants } from "node:os";
import type { GrpcCallOptions } from "@berth/grpc";
import { isBerthError, type LogEntry, ValidationError } from "@berth/runtime-core";
import { OutputCollector } from "@berth/runtime-core/internal";
import type { ContainerdClient } from "./client.js";
import { ignoreNotFound, PROCESS_TYPE_URL, parseSpec, ROOTFS_READ } from "./container-record.js";
import type { Metric } from "./generated/github.com/containerd/containerd/api/types/metrics.js";
import type { Process } from "./generated/github.com/containerd/containerd/api/types/task/task.js";
import type { Any } from "./generated/google/protobuf/any.js";
import { readTextInRoot } from "./in-root.js";
import { type Spec, withEnv } from "./oci/spec.js";
import { resolveUser } from "./oci/user.js";
import { fifoIo, type IoCreator, type TaskIo, uriIo } from "./task-io.js";

/** A signal's number from its number or name: 9, "9", "SIGKILL" or "KILL". */
export function signalNumber(signal: number | string): number {
  const s = typeof signal === "string" ? signal.trim().toUpperCase() : signal;
  const n =
    typeof s === "number"
      ? s
      : /^\d+$/.test(s)
        ? Number(s)
        : osConstants.signals[(s.startsWith("SIG") ? s : `SIG${s}`) as NodeJS.Signals];
  if (n === undefined || !Number.isInteger(n) || n <= 0 || n > 64) {
    throw new ValidationError(`unknown signal ${JSON.stringify(signal)}`, { operation: "Tasks.Kill" });
  }
  return n;
}

/** How a process ended. */
export interface TaskExitStatus {
  /** Its exit status as containerd reports it. */
  exitCode: number;
  /** When it exited, when known. */
  exitedAt: Date | undefined;
}

/** Where a process's output goes, entry by entry (an OutputCollector, say). */
export interface OutputSink {
  /** Takes one entry. */
  push(entry: LogEntry): void;
}

/** A process in a task: the init process (execId "") or an exec'd one. */
export class TaskProcess {
  /** The client the process was made with. */
  readonly client: ContainerdClient;
  /** Its container's id. */
  readonly containerId: string;
  /** Its exec id ("" for the init process). */
  readonly execId: string;
  /** Its IO: FIFOs, or a URI the shim writes to. */
  readonly io: TaskIo;
  #exit: Promise<TaskExitStatus> | undefined;

  constructor(client: ContainerdClient, containerId: string, execId: string, io: TaskIo) {
    this.client = client;
    this.containerId = containerId;
    this.execId = execId;
    this.io = io;
  }

  /** The process's stdout (everything, on a terminal). */
  get stdout() {
    return this.io.stdout;
  }
  /** The process's stderr. */
  get stderr() {
    return this.io.stderr;
  }
  /** The process's stdin, when it was given one. */
  get stdin() {
    return this.io.stdin;
  }

  #ids() {
    return { containerId: this.containerId, execId: this.execId };
  }

  /** Start the process; with FIFOs the exit is watched from here on, so the streams end after it. */
  async start(options: GrpcCallOptions = {}): Promise<number> {
    const { pid } = await this.client.tasks.start(this.#ids(), options);
    if (this.io.release) this.wait().catch(() => {});
    return pid;
  }

  /** The exit status. Without options it is asked once (later calls share it) and releases the IO; a
   *  wait that failed because the daemon went away is not remembered: the shim keeps the process
   *  running, and a later wait() asks again. With options, a wait of the caller's own. */
  wait(options?: GrpcCallOptions): Promise<TaskExitStatus> {
    if (options) return this.#wait(options);
    this.#exit ??= this.#wait({}).then(
      async (r) => {
        await this.io.release?.();
        return r;
      },
      async (err: unknown) => {
        // Keep the stdio placeholders too: the process may not have opened its FIFOs yet.
        if (isBerthError(err) && err.code === "Unavailable") this.#exit = undefined;
        else await this.io.release?.();
        throw err;
      },
    );
    return this.#exit;
  }

  async #wait(options: GrpcCallOptions): Promise<TaskExitStatus> {
    const r = await this.client.tasks.wait(this.#ids(), options);
    return { exitCode: r.exitStatus, exitedAt: r.exitedAt };
  }

  /** Send a signal (default SIGTERM); `all` signals every process of the container. */
  async kill(
    signal: number | NodeJS.Signals = "SIGTERM",
    options: GrpcCallOptions & {
      /** Signal every process in the container, not only this one. */
      all?: boolean;
    } = {},
  ): Promise<void> {
    const { all = false, ...call } = options;
    await this.client.tasks.kill({ ...this.#ids(), signal: signalNumber(signal), all }, call);
  }

  /** End stdin: close our end and tell the shim to close the process's. */
  async closeStdin(): Promise<void> {
    const s = this.io.stdin;
    if (s && !s.writableEnded) await new Promise<void>((resolve) => s.end(resolve));
    await this.client.tasks.closeIO({ ...this.#ids(), stdin: true });
  }

  /** Push stdout and stderr into `sink` as they come, until both end (read them from before start()). */
  async readOutput(sink: OutputSink): Promise<void> {
    const read = async (stream: NodeJS.ReadableStream, name: "stdout" | "stderr") => {
      for await (const data of stream) sink.push({ stream: name, data: data as Buffer });
    };
    await Promise.all([read(this.io.stdout, "stdout"), read(this.io.stderr, "stderr")]);
  }

  /** Read stdout and stderr to the end. */
  async output(): Promise<{
    /** Everything written to stdout, as UTF-8 text. */
    stdout: string;
    /** Everything written to stderr, as UTF-8 text. */
    stderr: string;
  }> {
    const collected = new OutputCollector();
    await this.readOutput(collected);
    const { stdout, stderr } = collected.result();
    return { stdout: stdout.toString("utf8"), stderr: stderr.toString("utf8") };
  }
}

/** A container's task: its init process, and the calls that act on the whole task. */
export class Task extends TaskProcess {
  /** The init process's host pid. */
  readonly pid: number;
  /** The task as containerd reported it when it was loaded (Container.task()); undefined when made here. */
  readonly process: Process | undefined;

  constructor(client: ContainerdClient, containerId: string, io: TaskIo, pid: number, process?: Process) {
    super(client, containerId, "", io);
    this.pid = pid;
    this.process = process;
  }

  /** The task of container `containerId` with no IO of this side's, to act on without loading it. */
  static of(client: ContainerdClient, containerId: string, process?: Process): Task {
    return new Task(client, containerId, uriIo(""), process?.pid ?? 0, process);
  }

  /** Run another process in the container; `args` replace the init process's in its spec. */
  async exec(args: string[], options: TaskExecOptions = {}): Promise<ExecProcess> {
    return execInTask(this.client, this.containerId, args, options);
  }

  /** Freeze every process of the task. */
  async pause(options: GrpcCallOptions = {}): Promise<void> {
    await this.client.tasks.pause({ containerId: this.containerId }, options);
  }
  /** Thaw a paused task. */
  async resume(options: GrpcCallOptions = {}): Promise<void> {
    await this.client.tasks.resume({ containerId: this.containerId }, options);
  }
  /** The task's status: "running", "paused", "stopped"... */
  async status(): Promise<string> {
    const { process } = await this.client.tasks.get({ containerId: this.containerId });
    return (
      ["unknown", "created", "running", "stopped", "paused", "pausing"][process?.status ?? 0] ?? "unknown"
    );
  }
  /** cgroup metrics, as the daemon's Any (io.containerd.cgroups.v1.Metrics or v2). */
  async metrics(): Promise<Any | undefined> {
    return (await this.metric())?.data;
  }
  /** cgroup metrics with the time they were taken. */
  async metric(options: GrpcCallOptions = {}): Promise<Metric | undefined> {
    const filters = [`id==${JSON.stringify(this.containerId)}`];
    const { metrics } = await this.client.tasks.metrics({ filters }, options);
    return metrics.find((x) => x.id === this.containerId) ?? metrics[0];
  }

  /** Delete the task (it must have exited; kill it first) and free its IO. */
  async delete(options: GrpcCallOptions = {}): Promise<TaskExitStatus> {
    try {
      const r = await this.client.tasks.delete({ containerId: this.containerId }, options);
      return { exitCode: r.exitStatus, exitedAt: r.exitedAt };
    } finally {
      await this.io.cleanup();
    }
  }

  /** Kill every process of the task, wait for them (10 s at most), and delete it: gone, whatever its
   *  state (a task that is not there already is no error). */
  async destroy(): Promise<void> {
    try {
      await this.kill(9, { all: true });
      await this.wait({ timeout: 10_000 }).catch(() => {});
    } catch {}
    await this.delete().catch(ignoreNotFound);
  }
}

/** A process exec'd into a running task. */
export class ExecProcess extends TaskProcess {
  /** Delete the exec'd process (it must have exited) and free its IO. */
  async delete(): Promise<void> {
    try {
      await this.client.tasks.deleteProcess({ containerId: this.containerId, execId: this.execId });
    } finally {
      await this.io.cleanup();
    }
  }
}

/** The task of every container in the client's namespace. */
export async function listTasks(client: ContainerdClient, options: GrpcCallOptions = {}): Promise<Process[]> {
  return (await client.tasks.list({}, options)).tasks;
}

/** Options of execInTask() and Task.exec(). */
export interface TaskExecOptions {
  /** The exec's id (default: a random one). */
  execId?: string;
  /** The whole environment (default: the container's). */
  env?: string[];
  /** KEY=value pairs set over the container's environment (or over `env`). */
  extraEnv?: readonly string[];
  /** Working directory (default: the container's). */
  cwd?: string;
  /** "user[:group]" or uid[:gid]; names are looked up in the running container's /etc/passwd and
   *  /etc/group (read through /proc/<pid>/root, so this needs to run on the daemon's host). */
  user?: string;
  /** Give the process a stdin FIFO (default false). */
  stdin?: boolean;
  /** Run on a pseudo-terminal (default false). */
  terminal?: boolean;
  /** Where its stdio goes (default: FIFOs, as `stdin` and `terminal` say). */
  io?: IoCreator;
}

/** Start nothing yet: add a process to a running task, with FIFO stdio, and return it. */
export async function execInTask(
  client: ContainerdClient,
  containerId: string,
  args: string[],
  options: TaskExecOptions = {},
): Promise<ExecProcess> {
  const { container } = await client.containers.get({ id: containerId });
  const process = await execProcessSpec(client, containerId, parseSpec(container?.spec), args, options);
  const execId = options.execId ?? `exec-${randomUUID().slice(0, 8)}`;
  const terminal = options.terminal ?? false;
  const io = await (options.io ?? fifoIo({ stdin: options.stdin ?? false, terminal }))();
  try {
    await client.tasks.exec({
      containerId,
      execId,
      stdin: io.stdinPath,
      stdout: io.stdoutPath,
      stderr: io.stderrPath,
      terminal,
      spec: { typeUrl: PROCESS_TYPE_URL, value: Buffer.from(JSON.stringify(process)) },
    });
  } catch (err) {
    await io.cleanup();
    throw err;
  }
  return new ExecProcess(client, containerId, execId, io);
}

/** The OCI process of an exec: the container's, with the exec's args, env, cwd and user. */
async function execProcessSpec(
  client: ContainerdClient,
  containerId: string,
  spec: Spec,
  args: string[],
  options: TaskExecOptions,
): Promise<NonNullable<Spec["process"]>> {
  const process: NonNullable<Spec["process"]> = {
    ...spec.process,
    cwd: options.cwd ?? spec.process?.cwd ?? "/",
    args,
    terminal: options.terminal ?? false,
    ...(options.env ? { env: options.env } : {}),
  };
  if (options.extraEnv?.length) {
    const holder: Spec = { ociVersion: spec.ociVersion, process };
    withEnv(options.extraEnv)(holder, { id: containerId, namespace: client.namespace });
  }
  if (options.user !== undefined) {
    const { process: init } = await client.tasks.get({ containerId });
    // The container's own root: its /etc may be a symlink, resolved inside it.
    const root = `/proc/${init?.pid ?? 0}/root`;
    const [passwd, group] = await Promise.all(
      ["etc/passwd", "etc/group"].map((f) => readTextInRoot(root, f, ROOTFS_READ)),
    );
    const r = resolveUser(options.user, passwd, group);
    process.user = {
      uid: r.uid,
      gid: r.gid,
      ...(r.additionalGids.length ? { additionalGids: r.additionalGids } : {}),
    };
  }
  return process;
}
