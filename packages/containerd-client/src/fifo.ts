// Task stdio over FIFOs, the way containerd's shims expect it. The shim opens our FIFOs by path; to never
// block the event loop and never see a spurious EOF, each read end is opened O_NONBLOCK before the task
// exists and paired with a placeholder write end of our own, closed once the process has exited: the
// stream then ends exactly when the shim has written everything. stdin is opened O_RDWR (which never
// blocks on a FIFO) and closed when the caller ends it.
import { execFile } from "node:child_process";
import { close, constants, mkdtemp, open, rm } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, type Writable } from "node:stream";
import { promisify } from "node:util";

const openFd = promisify(open);
const closeFd = promisify(close);

/** Which FIFOs ProcessIo.create() makes. */
export interface ProcessIoOptions {
  /** Make a stdin FIFO too (default false). */
  stdin?: boolean;
  /** With a terminal, stdout carries both streams and stderr stays empty. */
  terminal?: boolean;
}

/**
 * The FIFOs a containerd shim connects a process's stdio to, in a temporary directory of their own,
 * opened from this side as streams.
 */
export class ProcessIo {
  /** The stdin FIFO's path ("" without stdin). */
  readonly stdinPath: string;
  /** The stdout FIFO's path. */
  readonly stdoutPath: string;
  /** The stderr FIFO's path. */
  readonly stderrPath: string;
  /** What the process writes to stdout. */
  readonly stdout: Readable;
  /** What the process writes to stderr. */
  readonly stderr: Readable;
  /** The process's stdin, when there is one. */
  readonly stdin: Writable | undefined;
  /** Whether the process runs on a terminal (no stderr FIFO then). */
  readonly terminal: boolean;
  readonly #dir: string;
  #placeholders: number[];

  private constructor(
    dir: string,
    paths: [string, string, string],
    streams: { stdout: Readable; stderr: Readable; stdin: Writable | undefined },
    placeholders: number[],
  ) {
    this.#dir = dir;
    [this.stdinPath, this.stdoutPath, this.stderrPath] = paths;
    this.stdout = streams.stdout;
    this.stderr = streams.stderr;
    this.stdin = streams.stdin;
    this.terminal = paths[2] === "";
    this.#placeholders = placeholders;
  }

  /** Makes the FIFOs in a new temporary directory and opens them. */
  static async create(options: ProcessIoOptions = {}): Promise<ProcessIo> {
    const dir = await promisify(mkdtemp)(join(tmpdir(), "berth-io-"));
    const stdinPath = options.stdin ? join(dir, "stdin") : "";
    const stdoutPath = join(dir, "stdout");
    const stderrPath = options.terminal ? "" : join(dir, "stderr");
    const fifos = [stdinPath, stdoutPath, stderrPath].filter(Boolean);
    const fds: number[] = [];
    try {
      await promisify(execFile)("mkfifo", ["-m", "0600", ...fifos]);
      const reader = async (path: string): Promise<Readable> => {
        const fd = await openFd(path, constants.O_RDONLY | constants.O_NONBLOCK);
        fds.push(fd);
        fds.push(await openFd(path, constants.O_WRONLY | constants.O_NONBLOCK));
        return new Socket({ fd, readable: true, writable: false });
      };
      const stdout = await reader(stdoutPath);
      const stderr = stderrPath ? await reader(stderrPath) : emptyReadable();
      let stdin: Writable | undefined;
      if (stdinPath) {
        const fd = await openFd(stdinPath, constants.O_RDWR | constants.O_NONBLOCK);
        stdin = new Socket({ fd, readable: false, writable: true });
      }
      // Only the placeholder writers (odd positions) stay ours to close; sockets own the read ends.
      const placeholders = fds.filter((_, i) => i % 2 === 1);
      return new ProcessIo(dir, [stdinPath, stdoutPath, stderrPath], { stdout, stderr, stdin }, placeholders);
    } catch (err) {
      for (const fd of fds) await closeFd(fd).catch(() => {});
      await promisify(rm)(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The process has exited (or will never start): let the streams end once the shim lets go. */
  async release(): Promise<void> {
    const fds = this.#placeholders;
    this.#placeholders = [];
    for (const fd of fds) await closeFd(fd).catch(() => {});
  }

  /** Release, destroy the streams and remove the FIFOs. */
  async cleanup(): Promise<void> {
    await this.release();
    this.stdin?.destroy();
    this.stdout.destroy();
    this.stderr.destroy();
    await promisify(rm)(this.#dir, { recursive: true, force: true });
  }
}

function emptyReadable(): Readable {
  return Readable.from([]);
}
