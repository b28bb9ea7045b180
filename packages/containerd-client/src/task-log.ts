// Container logs for containerd, which keeps none: each task's stdout and stderr go to berth's logger
// (bin/logger.mjs) through the shim's binary:// stdio, and the logger appends them to a file of CRI log
// records. The file outlives the calling process; a marker file says when the output is complete (see
// the logger for the protocol). This module names the files, builds the URI and reads the log.
import { constants } from "node:fs";
import { access, mkdir, open, readFile, rm, rmdir } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { DaemonError, type LogEntry, ValidationError } from "@berth/runtime-core";
import { logFileInside, makeDirectoryInside, pathInside, readCriLogs } from "@berth/runtime-core/internal";

/** The logger script, beside src/ and dist/ in the package. */
export const LOGGER_SCRIPT = fileURLToPath(new URL("../bin/logger.mjs", import.meta.url));

/** How long a reader waits for the logger to mark the end once the task has stopped. */
export const LOGGER_DRAIN_TIMEOUT_MS = 5_000;

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `binary://` + a path, each segment escaped (Go's url.Parse decodes them back). */
function binaryUri(path: string, query: Record<string, string>): string {
  const p = path
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
  const q = Object.entries(query)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
  return `binary://${p}?${q}`;
}

/**
 * The stdio URI of a task logging to `logPath`. One query key, the script, whose value is the log path:
 * the shim turns each key and value into arguments in map order, so one key keeps them in order.
 */
export function loggerUri(logPath: string, options: { node?: string; script?: string } = {}): string {
  return binaryUri(options.node ?? process.execPath, { [options.script ?? LOGGER_SCRIPT]: logPath });
}

/** Opening for writing never follows a symlink at the log's own name (ELOOP instead). */
const WRITE = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW;

/**
 * The log of one container and its marker files. With a `root`, every file it writes or deletes must lie
 * inside that directory (its directories' symlinks resolved, never the file's own): the path may come from
 * a container record, which anyone with the containerd socket can write.
 */
export class TaskLog {
  constructor(
    /** The log file (CRI log records); its markers are this path with `.done`, `.drain` and `.error`. */
    readonly path: string,
    /** The directory every file this log writes or deletes must lie inside; none: no such check. */
    readonly root?: string,
  ) {}

  /** Created by the logger once everything the task wrote is in the log. */
  get donePath(): string {
    return `${this.path}.done`;
  }
  /** Created by a reader that saw the task stopped: the logger then reads what is left and marks done. */
  get drainPath(): string {
    return `${this.path}.drain`;
  }
  /** Written by a logger that could not start. */
  get errorPath(): string {
    return `${this.path}.error`;
  }

  /** The directory, and an empty log if there is none yet or `truncate` (so a reader can open it before
   *  the task starts). */
  async create(options: { truncate?: boolean } = {}): Promise<void> {
    if (this.root === undefined) await mkdir(dirname(this.path), { recursive: true, mode: 0o750 });
    else if (!(await makeDirectoryInside(this.root, dirname(this.path)))) throw this.#outside(this.path);
    await this.#touch(this.path, options.truncate ? constants.O_TRUNC : constants.O_APPEND);
  }

  /** Opens `path` for writing (created if missing) and closes it, inside the root and never through a
   *  symlink at its name. */
  async #touch(path: string, flags: number): Promise<void> {
    if (this.root !== undefined && (await pathInside(this.root, path)) === undefined)
      throw this.#outside(path);
    const file = await open(path, WRITE | flags, 0o640).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ELOOP") throw err;
      throw new ValidationError(`the log ${path} is a symlink, which berth does not follow`, {
        operation: "log",
        backend: "containerd",
        cause: err,
      });
    });
    await file.close();
  }

  #outside(path: string): ValidationError {
    return new ValidationError(
      `the log ${path} does not lie inside the log directory ${this.root} (a symlink on the way?)`,
      { operation: "log", backend: "containerd" },
    );
  }

  /** Before a task starts: the log is kept (appended to), the markers of an earlier run go. */
  async prepareStart(): Promise<void> {
    await this.create();
    await Promise.all([this.donePath, this.drainPath, this.errorPath].map((p) => rm(p, { force: true })));
  }

  /** The logger's own error, when it could not start. */
  async startError(): Promise<DaemonError | undefined> {
    const text = await readFile(this.errorPath, "utf8").catch(() => undefined);
    if (text === undefined) return undefined;
    return new DaemonError(text.trim(), { operation: "logger", backend: "containerd" });
  }

  /** Whether the logger has marked the log complete (its `.done` marker exists). */
  isDone(): Promise<boolean> {
    return exists(this.donePath);
  }

  /** Ask the logger to finish (only once the task has stopped: it reads what is left and exits). */
  async requestDrain(): Promise<void> {
    await this.#touch(this.drainPath, constants.O_APPEND);
  }

  /** After the task stopped: have the logger finish and wait until it did (or gave no sign in time). */
  async settle(timeoutMs = LOGGER_DRAIN_TIMEOUT_MS): Promise<boolean> {
    if (await this.isDone()) return true;
    await this.requestDrain();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.isDone()) return true;
      await sleep(20);
    }
    return false;
  }

  /** Remove the log and its markers (with a root: regular files inside it only), and its folder once empty. */
  async remove(): Promise<void> {
    const root = this.root;
    await Promise.all(
      [this.path, this.donePath, this.drainPath, this.errorPath].map(async (p) => {
        const file = root === undefined ? p : await logFileInside(root, p);
        if (file !== undefined) await rm(file, { force: true });
      }),
    );
    const dir = dirname(this.path);
    if (root === undefined || (await pathInside(root, dir)) !== undefined) await rmdir(dir).catch(() => {});
  }

  /**
   * The log's entries. With `follow`, `until` is asked whenever the file has nothing new; the reading
   * ends once it returns true. A missing file reads as empty.
   */
  async *read(options: {
    follow?: boolean;
    since?: Date;
    tail?: number;
    signal?: AbortSignal;
    until?: () => Promise<boolean>;
    pollInterval?: number;
  }): AsyncGenerator<LogEntry> {
    if (!(await exists(this.path))) {
      if (!options.follow) return;
      await this.create();
    }
    const entries = readCriLogs(this.path, {
      backend: "containerd",
      ...(options.follow ? { follow: true } : {}),
      ...(options.since ? { since: options.since } : {}),
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.until ? { until: options.until } : {}),
      ...(options.pollInterval ? { pollInterval: options.pollInterval } : {}),
    });
    for await (const e of entries) {
      // A whole line lost its newline in the record; a partial one (the output's unterminated end) had none.
      const data = e.partial ? e.data : Buffer.concat([e.data, NEWLINE]);
      yield { stream: e.stream, data, ...(Number.isNaN(e.time.getTime()) ? {} : { time: e.time }) };
    }
  }
}

const NEWLINE = Buffer.from("\n");
