// Containers and tasks: a container record with a fresh snapshot and an OCI spec, a task (the running
// init process) with FIFO stdio, exec'd processes, signals, pause/resume, metrics, and `run()`.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { constants as osConstants, tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import type { CallOptions } from "@berth/grpc";
import {
  isBerthError,
  NotFoundError,
  ProtocolError,
  parseImageRef,
  ValidationError,
} from "@berth/runtime-core";
import type { ContainerdClient } from "./client.js";
import { ProcessIo } from "./fifo.js";
import type { Mount } from "./generated/github.com/containerd/containerd/api/types/mount.js";
import { Options as RuncOptions } from "./generated/github.com/containerd/containerd/api/types/runc/options/oci.js";
import type { Any } from "./generated/google/protobuf/any.js";
import { DEFAULT_SNAPSHOTTER, getImage, type ImageInfo } from "./image.js";
import { readTextInRoot } from "./in-root.js";
import { type Fail, isObject, parseDocument } from "./oci/documents.js";
import {
  buildSpec,
  type Spec,
  type SpecContext,
  type SpecOpt,
  withEnv,
  withImageConfig,
} from "./oci/spec.js";
import { MAX_USER_DB_BYTES, resolveUser } from "./oci/user.js";
import { GC_EXPIRE_LABEL, type PullOptions, pull } from "./pull.js";
import type { Platform } from "./registry/platform.js";

/** The Any type URL of an OCI runtime spec in a container record. */
export const SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/** The Any type URL of an OCI process spec (an exec's). */
export const PROCESS_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/** The Any type URL of the runc shim's options. */
export const RUNC_OPTIONS_TYPE_URL = "containerd.runc.v1.Options";
/** The runc shim v2, the default runtime of new containers. */
export const RUNC_V2 = "io.containerd.runc.v2";

const run$ = promisify(execFile);

/** The OCI runtime a container runs with. */
export interface RuntimeOptions {
  /** Shim name (default io.containerd.runc.v2). */
  name?: string;
  /** OCI runtime binary the shim runs, e.g. "/usr/bin/crun" (default: runc on PATH). */
  binaryName?: string;
  /** The runtime's state root (runc --root). */
  root?: string;
  /** Let systemd manage the container's cgroup (runc's --systemd-cgroup); default false. */
  systemdCgroup?: boolean;
}

/** Options of createContainer(). */
export interface CreateContainerOptions {
  /** Options applied after the image config, in order. */
  spec?: SpecOpt[];
  /** The OCI runtime (shim, binary, root). */
  runtime?: RuntimeOptions;
  /** The snapshotter the rootfs is prepared with (default "overlayfs"). */
  snapshotter?: string;
  /** Labels of the container record. */
  labels?: Record<string, string>;
  /** Extensions of the container record: data of the caller's own, kept with the container. */
  extensions?: Record<string, Any>;
  /** The image platform to use (default: this host's). */
  platform?: Platform;
  /** Cancels the creation: an AbortedError once the signal fires. */
  signal?: AbortSignal;
}

/** An OCI spec as the Any a container record holds (JSON, SPEC_TYPE_URL). */
export function specAny(spec: Spec): Any {
  return { typeUrl: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(spec)) };
}

function runtimeAny(r: RuntimeOptions): Any {
  const opts = RuncOptions.fromPartial({
    binaryName: r.binaryName ?? "",
    root: r.root ?? "",
    systemdCgroup: r.systemdCgroup ?? false,
  });
  return { typeUrl: RUNC_OPTIONS_TYPE_URL, value: Buffer.from(RuncOptions.encode(opts).finish()) };
}

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

function isNotFound(err: unknown): boolean {
  return isBerthError(err) && err.code === "NotFound";
}

/** How files of an image's rootfs are read: paths resolved inside it, regular files only, capped. */
const ROOTFS_READ = { maxBytes: MAX_USER_DB_BYTES, operation: "rootfs.read" };

/** Read files of a rootfs given by snapshot mounts: bind mounts are read in place, others are mounted
 *  read-only on a temporary directory for the time of the read. Missing files are undefined. Paths are
 *  resolved inside the rootfs (its symlinks cannot reach the host's files); a file that is not regular
 *  (FIFO, device, directory), larger than 1 MiB, or behind a symlink loop is a ValidationError. */
export async function readRootfsFiles(
  mounts: readonly Mount[],
  paths: readonly string[],
): Promise<(string | undefined)[]> {
  const readAll = (root: string) => Promise.all(paths.map((p) => readTextInRoot(root, p, ROOTFS_READ)));
  const m = mounts[0];
  if (!m) return paths.map(() => undefined);
  if (mounts.length === 1 && m.type === "bind") return readAll(m.source);
  const dir = await mkdtemp(join(tmpdir(), "berth-rootfs-"));
  try {
    for (const mount of mounts) {
      const options = [...mount.options.filter((o) => o !== "rw"), "ro"].join(",");
      await run$("mount", ["-t", mount.type, "-o", options, mount.source, dir]);
    }
    try {
      return await readAll(dir);
    } finally {
      for (const _ of mounts) await run$("umount", [dir]).catch(() => {});
    }
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** The OCI spec of a container record (an empty spec when it has none). The record is the daemon's (any
 *  client may have written it): a spec that is not a JSON object with a process object is a
 *  ProtocolError, not a SyntaxError or TypeError later. */
export function parseSpec(any: Any | undefined): Spec {
  if (!any?.value?.byteLength) return {} as Spec;
  const fail = (message: string) =>
    new ProtocolError(`container spec: ${message}`, { operation: "Containers.Get", backend: "containerd" });
  return parseDocument(any.value, "the container's OCI spec", checkSpec, fail);
}

function checkSpec(value: unknown, what: string, fail: Fail): Spec {
  if (!isObject(value)) throw fail(`${what} is not a JSON object`);
  const p = value.process;
  if (p !== undefined && !isObject(p)) throw fail(`${what}: process is not an object`);
  for (const key of ["args", "env"]) {
    const list = p?.[key];
    if (list !== undefined && (!Array.isArray(list) || list.some((a) => typeof a !== "string"))) {
      throw fail(`${what}: process.${key} is not a list of strings`);
    }
  }
  return value as unknown as Spec;
}

/** Where a task's stdio goes: FIFO paths, or for stdout/stderr any URI the shim takes (binary://, file://). */
export interface TaskIoPaths {
  /** Path of the stdin FIFO, when the process has stdin. */
  stdin?: string;
  /** Path of the stdout FIFO (or a logger URI). */
  stdout?: string;
  /** Path of the stderr FIFO (or a logger URI). */
  stderr?: string;
  /** Run the process on a pseudo-terminal (stdout then carries everything). */
  terminal?: boolean;
}

/**
 * Create the task of a container (its init process, not started) from the container record: the rootfs
 * from its snapshot and the runtime options it was created with. Returns the pid.
 */
export async function createTask(
  client: ContainerdClient,
  containerId: string,
  io: TaskIoPaths,
  options: CallOptions = {},
): Promise<number> {
  const { container } = await client.containers.get({ id: containerId }, options);
  if (!container)
    throw new NotFoundError(`container ${containerId} not found`, { operation: "Containers.Get" });
  const { mounts } = await client.snapshots.mounts(
    { snapshotter: container.snapshotter, key: container.snapshotKey },
    options,
  );
  const { pid } = await client.tasks.create(
    {
      containerId,
      rootfs: mounts,
      stdin: io.stdin ?? "",
      stdout: io.stdout ?? "",
      stderr: io.stderr ?? "",
      terminal: io.terminal ?? false,
      ...(container.runtime?.options ? { options: container.runtime.options } : {}),
    },
    options,
  );
  return pid;
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
}

/** Start nothing yet: add a process to a running task, with FIFO stdio, and return it. */
export async function execInTask(
  client: ContainerdClient,
  containerId: string,
  args: string[],
  options: TaskExecOptions = {},
): Promise<ExecProcess> {
  const { container } = await client.containers.get({ id: containerId });
  const spec = parseSpec(container?.spec);
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
  const execId = options.execId ?? `exec-${randomUUID().slice(0, 8)}`;
  const io = await ProcessIo.create({ stdin: options.stdin ?? false, terminal: options.terminal ?? false });
  try {
    await client.tasks.exec({
      containerId,
      execId,
      stdin: io.stdinPath,
      stdout: io.stdoutPath,
      stderr: io.stderrPath,
      terminal: options.terminal ?? false,
      spec: { typeUrl: PROCESS_TYPE_URL, value: Buffer.from(JSON.stringify(process)) },
    });
  } catch (err) {
    await io.cleanup();
    throw err;
  }
  return new ExecProcess(client, containerId, execId, io);
}

/** How a process ended. */
export interface ExitStatus {
  /** Its exit status as containerd reports it. */
  exitCode: number;
  /** When it exited, when known. */
  exitedAt: Date | undefined;
}

/** A process in a task: the init process (execId "") or an exec'd one. */
export class TaskProcess {
  /** The client the process was made with. */
  readonly client: ContainerdClient;
  /** Its container's id. */
  readonly containerId: string;
  /** Its exec id ("" for the init process). */
  readonly execId: string;
  /** Its FIFOs. */
  readonly io: ProcessIo;
  #exit: Promise<ExitStatus> | undefined;

  constructor(client: ContainerdClient, containerId: string, execId: string, io: ProcessIo) {
    this.client = client;
    this.containerId = containerId;
    this.execId = execId;
    this.io = io;
  }

  /** The process's stdout (everything, on a terminal). */
  get stdout(): Readable {
    return this.io.stdout;
  }
  /** The process's stderr. */
  get stderr(): Readable {
    return this.io.stderr;
  }
  /** The process's stdin, when it was given one. */
  get stdin(): Writable | undefined {
    return this.io.stdin;
  }

  /** Start the process; the exit is watched from here on, and the output streams end after it. */
  async start(): Promise<number> {
    const { pid } = await this.client.tasks.start({ containerId: this.containerId, execId: this.execId });
    this.wait().catch(() => {});
    return pid;
  }

  /** The exit status (asked once; later calls share it). A wait that failed because the daemon went away
   *  is not remembered: the shim keeps the process running, and a later wait() asks again. */
  wait(): Promise<ExitStatus> {
    this.#exit ??= this.client.tasks.wait({ containerId: this.containerId, execId: this.execId }).then(
      async (r) => {
        await this.io.release();
        return { exitCode: r.exitStatus, exitedAt: r.exitedAt };
      },
      async (err: unknown) => {
        // Keep the stdio placeholders too: the process may not have opened its FIFOs yet.
        if (isBerthError(err) && err.code === "Unavailable") this.#exit = undefined;
        else await this.io.release();
        throw err;
      },
    );
    return this.#exit;
  }

  /** Send a signal (default SIGTERM); `all` signals every process of the container. */
  async kill(
    signal: number | NodeJS.Signals = "SIGTERM",
    options: {
      /** Signal every process in the container, not only this one. */
      all?: boolean;
    } = {},
  ): Promise<void> {
    await this.client.tasks.kill({
      containerId: this.containerId,
      execId: this.execId,
      signal: signalNumber(signal),
      all: options.all ?? false,
    });
  }

  /** End stdin: close our end and tell the shim to close the process's. */
  async closeStdin(): Promise<void> {
    const s = this.io.stdin;
    if (s && !s.writableEnded) await new Promise<void>((resolve) => s.end(resolve));
    await this.client.tasks.closeIO({ containerId: this.containerId, execId: this.execId, stdin: true });
  }

  /** Read stdout and stderr to the end. */
  async output(): Promise<{
    /** Everything written to stdout, as UTF-8 text. */
    stdout: string;
    /** Everything written to stderr, as UTF-8 text. */
    stderr: string;
  }> {
    const [stdout, stderr] = await Promise.all([collect(this.io.stdout), collect(this.io.stderr)]);
    return { stdout, stderr };
  }
}

async function collect(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks).toString("utf8");
}

/** A container's task: its init process, and the calls that act on the whole task. */
export class Task extends TaskProcess {
  /** The init process's host pid. */
  readonly pid: number;

  constructor(client: ContainerdClient, containerId: string, io: ProcessIo, pid: number) {
    super(client, containerId, "", io);
    this.pid = pid;
  }

  /** Run another process in the container; `args` replace the init process's in its spec. */
  async exec(args: string[], options: TaskExecOptions = {}): Promise<ExecProcess> {
    return execInTask(this.client, this.containerId, args, options);
  }

  /** Freeze every process of the task. */
  async pause(): Promise<void> {
    await this.client.tasks.pause({ containerId: this.containerId });
  }
  /** Thaw a paused task. */
  async resume(): Promise<void> {
    await this.client.tasks.resume({ containerId: this.containerId });
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
    const { metrics } = await this.client.tasks.metrics({ filters: [`id==${this.containerId}`] });
    return metrics[0]?.data;
  }

  /** Delete the task (it must have exited; kill it first) and remove its FIFOs. */
  async delete(): Promise<ExitStatus> {
    try {
      const r = await this.client.tasks.delete({ containerId: this.containerId });
      return { exitCode: r.exitStatus, exitedAt: r.exitedAt };
    } finally {
      await this.io.cleanup();
    }
  }
}

/** A process exec'd into a running task. */
export class ExecProcess extends TaskProcess {
  /** Delete the exec'd process (it must have exited) and remove its FIFOs. */
  async delete(): Promise<void> {
    try {
      await this.client.tasks.deleteProcess({ containerId: this.containerId, execId: this.execId });
    } finally {
      await this.io.cleanup();
    }
  }
}

/** A container record with its rootfs snapshot, as createContainer() made it. */
export class Container {
  constructor(
    /** The client it was made with. */
    readonly client: ContainerdClient,
    /** The container's id. */
    readonly id: string,
    /** The snapshotter of its rootfs. */
    readonly snapshotter: string,
    /** The key of its rootfs snapshot. */
    readonly snapshotKey: string,
    /** Its OCI runtime spec. */
    readonly spec: Spec,
  ) {}

  /** Create the task (the init process, not started) with FIFO stdio. */
  async newTask(options: { stdin?: boolean; terminal?: boolean } = {}): Promise<Task> {
    const io = await ProcessIo.create({ stdin: options.stdin ?? false, terminal: options.terminal ?? false });
    try {
      const pid = await createTask(this.client, this.id, {
        stdin: io.stdinPath,
        stdout: io.stdoutPath,
        stderr: io.stderrPath,
        terminal: options.terminal ?? false,
      });
      return new Task(this.client, this.id, io, pid);
    } catch (err) {
      await io.cleanup();
      throw err;
    }
  }

  /** The container `id` as recorded (NotFoundError when there is none). */
  static async load(client: ContainerdClient, id: string, options: CallOptions = {}): Promise<Container> {
    const { container } = await client.containers.get({ id }, options);
    if (!container) throw new NotFoundError(`container ${id} not found`, { operation: "Containers.Get" });
    return new Container(client, id, container.snapshotter, container.snapshotKey, parseSpec(container.spec));
  }

  /** Delete the task if any (killing it), the container record and its snapshot. */
  async delete(): Promise<void> {
    try {
      await this.client.tasks.kill({ containerId: this.id, signal: 9, all: true });
      await this.client.tasks.wait({ containerId: this.id }, { timeout: 10_000 }).catch(() => {});
    } catch {}
    await this.client.tasks.delete({ containerId: this.id }).catch((e) => {
      if (!isNotFound(e)) throw e;
    });
    await this.client.containers.delete({ id: this.id }).catch((e) => {
      if (!isNotFound(e)) throw e;
    });
    await this.client.snapshots
      .remove({ snapshotter: this.snapshotter, key: this.snapshotKey })
      .catch((e) => {
        if (!isNotFound(e)) throw e;
      });
  }
}

/**
 * Create a container from a pulled image: a fresh snapshot on the image's top layer, the default spec
 * with the image config (user names resolved in the image's /etc/passwd) and `options.spec` applied.
 */
export async function createContainer(
  client: ContainerdClient,
  image: string | ImageInfo,
  id: string,
  options: CreateContainerOptions = {},
): Promise<Container> {
  const snapshotter = options.snapshotter ?? DEFAULT_SNAPSHOTTER;
  const info =
    typeof image === "string"
      ? await getImage(client, image, options.platform ? { platform: options.platform } : {})
      : image;
  const parent = info.chainIds[info.chainIds.length - 1] ?? "";
  // Until the container record references the snapshot, only a lease keeps GC off it.
  const leaseId = `berth-create-${randomUUID()}`;
  const expire = new Date(Date.now() + 600_000).toISOString();
  await client.leases.create({ id: leaseId, labels: { [GC_EXPIRE_LABEL]: expire } });
  const { mounts } = await client.withLease(leaseId).snapshots.prepare({ snapshotter, key: id, parent });
  try {
    const [passwd, group] = await readRootfsFiles(mounts, ["etc/passwd", "etc/group"]);
    const ctx: SpecContext = { id, namespace: client.namespace, passwd, group };
    const spec = buildSpec(ctx, withImageConfig(info.config), ...(options.spec ?? []));
    const runtime = options.runtime ?? {};
    await client.containers.create({
      container: {
        id,
        image: info.name,
        labels: options.labels ?? {},
        runtime: { name: runtime.name ?? RUNC_V2, options: runtimeAny(runtime) },
        spec: specAny(spec),
        snapshotter,
        snapshotKey: id,
        extensions: options.extensions ?? {},
      },
    });
    return new Container(client, id, snapshotter, id, spec);
  } catch (err) {
    await client.snapshots.remove({ snapshotter, key: id }).catch(() => {});
    throw err;
  } finally {
    await client.leases.delete({ id: leaseId }).catch(() => {});
  }
}

/** Options of run(): createContainer()'s, plus the id, stdin and pulling. */
export interface RunOptions extends CreateContainerOptions {
  /** Container id (default berth-<random>). */
  id?: string;
  /** Bytes written to stdin, then closed. */
  stdin?: string | Uint8Array;
  /** Pull when the image is not there yet (default true). */
  pull?: boolean | PullOptions;
}

/** What run() resolves to. */
export interface RunResult {
  /** The process's exit code. */
  exitCode: number;
  /** Its stdout, as UTF-8 text. */
  stdout: string;
  /** Its stderr, as UTF-8 text. */
  stderr: string;
}

/** Pull if needed, create, start, collect the output, wait, and remove everything it created. */
export async function run(
  client: ContainerdClient,
  image: string,
  options: RunOptions = {},
): Promise<RunResult> {
  let info: ImageInfo;
  const name = parseImageRef(image).toString();
  try {
    info = await getImage(client, name, options.platform ? { platform: options.platform } : {});
  } catch (err) {
    if (!isNotFound(err) || options.pull === false) throw err;
    const pulled = await pull(client, image, typeof options.pull === "object" ? options.pull : {});
    info = await getImage(client, pulled.name, options.platform ? { platform: options.platform } : {});
  }
  const id = options.id ?? `berth-${randomUUID().slice(0, 12)}`;
  const container = await createContainer(client, info, id, options);
  const signal = options.signal;
  try {
    const task = await container.newTask({ stdin: options.stdin !== undefined });
    const onAbort = () => task.kill("SIGKILL", { all: true }).catch(() => {});
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const output = task.output();
      await task.start();
      if (options.stdin !== undefined) {
        task.stdin?.write(options.stdin);
        await task.closeStdin();
      }
      const { exitCode } = await task.wait();
      const { stdout, stderr } = await output;
      return { exitCode, stdout, stderr };
    } finally {
      signal?.removeEventListener("abort", onAbort);
      await task.delete().catch(() => {});
    }
  } finally {
    await container.delete();
  }
}
