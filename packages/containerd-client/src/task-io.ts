// Where a task's stdio goes, chosen by an IO creator as with the Go client's `cio.Creator`: FIFOs this
// process reads (fifoIo), or a URI the shim hands the output to (logIo: berth's logger, a file). A task
// is created one way whatever its IO, so the choice is made here and nowhere else.
import { Readable, type Writable } from "node:stream";
import { ProcessIo, type ProcessIoOptions } from "./fifo.js";

/** A task's stdio: what the shim is told, and this side's streams. */
export interface TaskIo {
  /** The stdin FIFO's path ("" for none). */
  readonly stdinPath: string;
  /** The stdout FIFO's path, or a URI the shim writes to (binary://, file://). */
  readonly stdoutPath: string;
  /** The stderr FIFO's path or URI ("" on a terminal: stdout then carries everything). */
  readonly stderrPath: string;
  /** Whether the process runs on a pseudo-terminal. */
  readonly terminal: boolean;
  /** What the process writes to stdout (empty when it goes to a URI). */
  readonly stdout: Readable;
  /** What the process writes to stderr (empty when it goes to a URI). */
  readonly stderr: Readable;
  /** The process's stdin, when it has one. */
  readonly stdin: Writable | undefined;
  /** Called once the process has exited, so the streams end; absent when there are none to end. */
  release?(): Promise<void>;
  /** Frees what the IO made (FIFOs, streams). */
  cleanup(): Promise<void>;
}

/** Makes the IO of a new task or exec'd process. */
export type IoCreator = () => Promise<TaskIo>;

/** FIFOs this process reads stdout and stderr from (and writes stdin to, with `stdin`). */
export function fifoIo(options: ProcessIoOptions = {}): IoCreator {
  return () => ProcessIo.create(options);
}

/** stdout and stderr to `uri` (e.g. loggerUri(): the shim runs berth's logger), no stdin. */
export function logIo(uri: string, options: { terminal?: boolean } = {}): IoCreator {
  return async () => uriIo(uri, options.terminal ?? false);
}

/** A process whose output goes to the shim's `uri`, or nowhere when it is "". */
export function uriIo(uri: string, terminal = false): TaskIo {
  return {
    stdinPath: "",
    stdoutPath: uri,
    stderrPath: uri,
    terminal,
    stdout: Readable.from([]),
    stderr: Readable.from([]),
    stdin: undefined,
    cleanup: async () => {},
  };
}
