// Reading a CRI container log file: in chunks, in constant memory, following it across rotation, or its
// tail read backwards from the end. The records are parsed and written in cri-log-record.ts and merged
// into lines by cri-log-decoder.ts; all three are exported from here.
import { type FSWatcher, constants as fsConstants, read, watch } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import {
  CriLogDecoder,
  type CriLogDecoderOptions,
  type CriLogEntry,
  DEFAULT_MAX_LINE_BYTES,
} from "./cri-log-decoder.js";
import { HEADER_MAX, type LogStream, malformed, parseHeader, type RecordHeader } from "./cri-log-record.js";
import {
  AbortedError,
  NotFoundError,
  ProtocolError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from "./errors.js";

export {
  type CriLogRecord,
  formatCriLogRecords,
  type LogStream,
  parseCriLogRecord,
} from "./cri-log-record.js";
export { CriLogDecoder, type CriLogDecoderOptions, type CriLogEntry, DEFAULT_MAX_LINE_BYTES };

const NEWLINE_BYTE = 0x0a;

/** Options of readCriLogs(). */
export interface ReadCriLogsOptions extends CriLogDecoderOptions {
  /** Keep reading as the file grows, across rotation (rename + new file) and truncation. */
  follow?: boolean;
  /** Only lines at or after this time. */
  since?: Date;
  /**
   * Only the last N lines present when reading starts (then, when following, everything new). The file is
   * read backwards from its end, in chunks, as far as those lines reach: a line's earlier parts count as
   * its own. Looking back for a stream's unfinished line stops `maxLineBytes` before the first of those.
   */
  tail?: number;
  /** Only these streams (default both). */
  streams?: LogStream[];
  /** Ends the iteration with an AbortedError; the usual way to stop following. */
  signal?: AbortSignal;
  /** Poll interval when following, in ms (file watch events wake it earlier); default 250. */
  pollInterval?: number;
  /**
   * When following, asked each time the file has nothing new: once it returns true (the container has
   * exited and its output is flushed), what is left is read and the iteration ends.
   */
  until?: () => boolean | Promise<boolean>;
}

/** Bytes read at a time (fewer, larger reads: the read calls were a fifth of the cost at 64 KiB). */
const CHUNK = 256 * 1024;
const NO_TIME = new Date(Number.NaN);

/**
 * Read a CRI log file as whole lines, in constant memory: the file is read in chunks and each chunk's
 * lines are yielded before the next is read. With `follow`, waits for more; when the file is renamed away
 * (rotation) it drains the old file and reopens the path; a truncated file is read again from the start.
 * The path must name a regular file (a FIFO or a device is refused with a ProtocolError).
 */
export function readCriLogs(path: string, options: ReadCriLogsOptions = {}): AsyncGenerator<CriLogEntry> {
  const { signal } = options;
  const backend = options.backend ?? "cri";
  return oneByOne(criLogBatches(path, options, backend), () =>
    signal?.aborted
      ? new AbortedError("logs: aborted", { operation: "logs", backend, cause: signal.reason })
      : undefined,
  );
}

/** readCriLogs' entries a chunk at a time (an async generator's resumption per entry costs a fifth more). */
async function* criLogBatches(
  path: string,
  options: ReadCriLogsOptions,
  backend: string,
): AsyncGenerator<CriLogEntry[]> {
  const { signal, since, follow } = options;
  const tail = tailCount(options.tail, backend);
  const streams = options.streams ? new Set(options.streams) : undefined;
  const wantedAt = (stream: LogStream, time: Date) =>
    (!streams || streams.has(stream)) && (!since || Number.isNaN(time.getTime()) || time >= since);
  const wanted = (e: CriLogEntry) => wantedAt(e.stream, e.time);
  const pick = (batch: CriLogEntry[]) => (streams || since ? batch.filter(wanted) : batch);
  const checkAbort = () => {
    if (signal?.aborted) {
      throw new AbortedError("logs: aborted", { operation: "logs", backend, cause: signal.reason });
    }
  };

  let decoder = new CriLogDecoder(options);
  let { fh, ino, size } = await openLog(path, backend);
  let position = 0;
  /** The entries of the next chunk (maybe none), or undefined at the end of the file or of `limit`. */
  const next = async (limit = Number.POSITIVE_INFINITY): Promise<CriLogEntry[] | undefined> => {
    if (position >= limit) return undefined;
    checkAbort();
    // A fresh buffer each time: the decoder keeps views of what it is given.
    const buf = Buffer.allocUnsafe(CHUNK);
    const bytesRead = await readAt(fh, buf, Math.min(CHUNK, limit - position), position);
    if (bytesRead === 0) return undefined;
    position += bytesRead;
    return decoder.push(buf.subarray(0, bytesRead));
  };
  /** Everything there is now (up to `limit`), chunk by chunk. */
  async function* drain(limit?: number): AsyncGenerator<CriLogEntry[]> {
    for (let batch = await next(limit); batch; batch = await next(limit)) {
      const wantedOnes = pick(batch);
      if (wantedOnes.length) yield wantedOnes;
    }
  }

  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  const onAbort = () => wake?.();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (tail === 0 && !follow) return;
    if (tail !== undefined) {
      // Where the last `tail` lines start; then count what that stretch holds, and read it again yielding
      // only its last `tail` (holding them instead would take `tail` times a line's size).
      const start = await tailStart(fh, size, {
        tail,
        follow: follow ?? false,
        wantedAt,
        lenient: options.lenient ?? false,
        maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
        checkAbort,
        backend,
      });
      position = start;
      let count = 0;
      for await (const batch of drain(size)) count += batch.length;
      if (!follow) count += pick(decoder.end()).length;
      let skip = count - tail;
      const keep = (batch: CriLogEntry[]) => {
        const kept = skip >= batch.length ? [] : batch.slice(Math.max(0, skip));
        skip -= batch.length;
        return kept;
      };
      decoder = new CriLogDecoder(options);
      position = start;
      for await (const batch of drain(size)) {
        const kept = keep(batch);
        if (kept.length) yield kept;
      }
      if (!follow) {
        yield keep(pick(decoder.end()));
        return;
      }
    } else if (!follow) {
      yield* drain();
      yield pick(decoder.end());
      return;
    }

    try {
      watcher = watch(dirname(path), (_event, name) => {
        if (!name || name === basename(path) || name.toString().startsWith(basename(path))) wake?.();
      });
      watcher.on("error", () => {});
    } catch {
      // No inotify (or the directory went away): polling alone still works.
    }
    const interval = options.pollInterval ?? 250;
    for (;;) {
      checkAbort();
      yield* drain();
      // Rotated (renamed, new file at the path) or truncated? Old data is drained above.
      const now = await stat(path).catch(() => undefined);
      if (now && now.ino !== ino) {
        await fh.close();
        ({ fh, ino, size } = await openLog(path, backend));
        position = 0;
        continue;
      }
      if (now && now.size < position) {
        position = 0;
        continue;
      }
      if (options.until && (await options.until())) {
        // Done: whatever was written before the end was signalled is read, then lines left open.
        yield* drain();
        yield pick(decoder.end());
        return;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, interval);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    watcher?.close();
    await fh.close();
  }
}

/**
 * Batches as items, one at a time: a resolved promise per item where an async generator would resume
 * per item. `stop` is asked before every item (an abort ends the iteration promptly, batch or not).
 * Like an async generator it runs `finally` blocks of `batches` on return, throw or a failure.
 */
function oneByOne<T>(batches: AsyncGenerator<T[]>, stop: () => Error | undefined): AsyncGenerator<T> {
  let batch: T[] = [];
  let i = 0;
  let done = false;
  const end = (): IteratorReturnResult<undefined> => {
    done = true;
    batch = [];
    return { value: undefined, done: true };
  };
  const it: AsyncGenerator<T> = {
    next(): Promise<IteratorResult<T>> {
      if (done) return Promise.resolve(end());
      const error = stop();
      if (error) {
        end();
        return batches.return([]).then(() => Promise.reject(error));
      }
      if (i < batch.length) return Promise.resolve({ value: batch[i++] as T, done: false });
      return batches.next().then(
        (r) => {
          if (r.done) return end();
          batch = r.value;
          i = 0;
          return it.next();
        },
        (err: unknown) => {
          end();
          throw err;
        },
      );
    },
    return(value?: unknown) {
      end();
      return batches.return([]).then(() => ({ value, done: true }) as IteratorReturnResult<undefined>);
    },
    throw(err: unknown) {
      end();
      return batches.throw(err).then(() => end());
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}

/** fh.read, through the callback API: half the cost per call of the promise one. */
function readAt(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fh.fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

function tailCount(tail: number | undefined, backend: string): number | undefined {
  if (tail === undefined || tail === Number.POSITIVE_INFINITY) return undefined;
  if (typeof tail !== "number" || !(tail >= 0)) {
    throw new ValidationError(`logs: tail must be a number of lines, 0 or more, not ${String(tail)}`, {
      operation: "logs",
      backend,
    });
  }
  return Math.floor(tail);
}

/** Open a log for reading; only a regular file will do. */
async function openLog(
  path: string,
  backend: string,
): Promise<{ fh: FileHandle; ino: number; size: number }> {
  const details = { operation: "logs", backend };
  let fh: FileHandle;
  try {
    // Non-blocking: opening a FIFO for reading would wait for a writer, holding a libuv thread meanwhile.
    fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const message = `logs: cannot open ${path}: ${(cause as Error).message}`;
    if (code === "ENOENT" || code === "ENOTDIR") throw new NotFoundError(message, { ...details, cause });
    if (code === "EACCES" || code === "EPERM") throw new UnauthorizedError(message, { ...details, cause });
    throw new UnavailableError(message, { ...details, cause });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ProtocolError(`logs: ${path} is not a regular file`, details);
    return { fh, ino: st.ino, size: st.size };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

interface TailScan {
  tail: number;
  follow: boolean;
  wantedAt: (stream: LogStream, time: Date) => boolean;
  lenient: boolean;
  maxLineBytes: number;
  checkAbort: () => void;
  backend: string;
}

/**
 * Where to start reading for the last `tail` lines of the first `size` bytes: records are scanned
 * backwards, chunk by chunk, until that many wanted lines have ended and the first record of each is
 * found (a line's earlier parts come before it, after the previous line of its stream ended). A stream
 * whose last record is partial has a line left open: it is the last line (when not following; when
 * following, the line still to be completed), so it is looked for too, `maxLineBytes` further at most.
 * Returns a record boundary. Memory: one chunk.
 */
async function tailStart(fh: FileHandle, size: number, o: TailScan): Promise<number> {
  let counted = 0;
  /** Streams with a counted line whose first record is not found yet. */
  const open = new Set<LogStream>();
  /** Streams whose last record has been seen. */
  const seen = new Set<LogStream>();
  let doneAt: number | undefined;
  /** Take in the record at `at`; true once nothing before it is needed. */
  const visit = (h: RecordHeader, at: number): boolean => {
    const last = !seen.has(h.stream);
    seen.add(h.stream);
    if (h.partial) {
      // The open end of a stream: its line is the last (when not following) or still to be finished.
      if (last && o.wantedAt(h.stream, o.follow ? NO_TIME : h.time)) {
        open.add(h.stream);
        if (!o.follow) counted++;
      }
    } else {
      // This record ends the previous line of its stream: the one after it starts after it.
      open.delete(h.stream);
      if (counted < o.tail && o.wantedAt(h.stream, h.time)) {
        counted++;
        open.add(h.stream);
      }
    }
    if (counted < o.tail || open.size > 0) return false;
    doneAt ??= at;
    return seen.size === 2 || doneAt - at > o.maxLineBytes;
  };
  /** The header of the record [at, end) (its newline at `end`): from `chunk` and the bytes after it. */
  const headerAt = (chunk: Buffer, chunkStart: number, after: Buffer, at: number, end: number) => {
    const n = Math.min(end - at, HEADER_MAX);
    let head = chunk.subarray(at - chunkStart, at - chunkStart + n);
    if (head.length < n) head = Buffer.concat([head, after.subarray(0, n - head.length)]);
    return parseHeader(head, 0, head.length, end - at <= HEADER_MAX);
  };
  /** Visit the record [at, end); true to stop. */
  const record = (chunk: Buffer, chunkStart: number, after: Buffer, at: number, end: number): boolean => {
    if (end === at) return false;
    const h = headerAt(chunk, chunkStart, after, at, end);
    if (typeof h !== "string") return visit(h, at);
    // Past the lines needed (looking further back only for an unfinished one), garbage ends the search.
    if (counted >= o.tail && open.size === 0) return true;
    if (o.lenient) return false;
    throw malformed(h, at, o.backend);
  };

  // The bytes after the last newline are a record still being written: not a line yet.
  let recordEnd = -1;
  /** The first bytes after the current chunk, for a header that runs past it. */
  let after = Buffer.alloc(0);
  let end = size;
  while (end > 0) {
    o.checkAbort();
    const start = Math.max(0, end - CHUNK);
    const chunk = Buffer.allocUnsafe(end - start);
    const bytesRead = await readAt(fh, chunk, chunk.length, start);
    // The file shrank under us (truncated): read it all, from the start.
    if (bytesRead < chunk.length) return 0;
    for (let i = chunk.length; i > 0; ) {
      const nl = chunk.lastIndexOf(NEWLINE_BYTE, i - 1);
      if (nl < 0) break;
      if (recordEnd >= 0 && record(chunk, start, after, start + nl + 1, recordEnd)) return recordEnd + 1;
      recordEnd = start + nl;
      i = nl;
    }
    if (start === 0 && recordEnd >= 0 && record(chunk, 0, after, 0, recordEnd)) return recordEnd + 1;
    after = chunk.length >= HEADER_MAX ? chunk.subarray(0, HEADER_MAX) : Buffer.concat([chunk, after]);
    end = start;
  }
  return 0;
}
