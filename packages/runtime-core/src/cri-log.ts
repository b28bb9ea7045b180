// CRI container logs: the files a runtime writes under the sandbox's log directory, one record a line:
//   <RFC3339Nano time> <stdout|stderr> <tags> <content>
// where tags is "F" (full line) or "P" (partial: the runtime split a long line, 16 KiB in containerd and
// CRI-O, and the rest follows). Readers merge partials back into whole lines, per stream.
import { type FSWatcher, constants as fsConstants, read, watch } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import {
  AbortedError,
  NotFoundError,
  ProtocolError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from "./errors.js";

export type LogStream = "stdout" | "stderr";

/** One record as written: a whole line or a piece of one. */
export interface CriLogRecord {
  /** The timestamp as written (RFC3339 with nanoseconds). */
  timestamp: string;
  time: Date;
  stream: LogStream;
  partial: boolean;
  content: Buffer;
}

/** A whole line, partials merged. */
export interface CriLogEntry {
  /** Timestamp of the record that completed the line. */
  timestamp: string;
  time: Date;
  stream: LogStream;
  /** The line without its newline, decoded as UTF-8 after merging (so a split character survives). */
  content: string;
  /** The same line as bytes, exactly as written (binary-safe). */
  data: Buffer;
  /** How many records made this line (1 unless the runtime split it). */
  parts: number;
  /** True only for a line still incomplete when reading stopped, or cut at `maxLineBytes`. */
  partial: boolean;
}

const SPACE = 0x20;
const NEWLINE_BYTE = 0x0a;
/** A record's header (timestamp, stream, tags) is looked for in this many bytes; a real one takes ~50. */
const HEADER_MAX = 256;
/** The longest line kept whole unless `maxLineBytes` says otherwise. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

interface RecordHeader {
  timestamp: string;
  time: Date;
  stream: LogStream;
  partial: boolean;
  /** Where the content starts in the record. */
  contentStart: number;
}

/**
 * The header of the record in `buf` from `start` to `end` (its newline, or the end of what is there).
 * `whole`: that is the whole record; otherwise its start, which must hold the header entire. Returns what
 * is wrong as a string (the caller knows where the record lies).
 */
function parseHeader(buf: Buffer, start: number, end: number, whole: boolean): RecordHeader | string {
  return usualHeader(buf, start, end) ?? anyHeader(buf, start, end, whole);
}

/**
 * The header as the runtimes write it, read at fixed places: an RFC 3339 time, "stdout" or "stderr", one
 * tag letter. (Most of a line's cost is its header: this is the fast way through.)
 */
function usualHeader(buf: Buffer, start: number, end: number): RecordHeader | undefined {
  let i = start + 19;
  if (buf[i] === 0x2e) {
    i++;
    while (i < end && (buf[i] as number) >= 0x30 && (buf[i] as number) <= 0x39) i++;
  }
  const s1 = buf[i] === 0x5a ? i + 1 : buf[i] === 0x2b || buf[i] === 0x2d ? i + 6 : -1;
  const s2 = s1 + 7;
  if (s1 < 0 || s2 + 2 > end || buf[s1] !== SPACE || buf[s2] !== SPACE) return undefined;
  const stream = streamAt(buf, s1 + 1);
  const tag = buf[s2 + 1];
  if (!stream || (tag !== 0x46 && tag !== 0x50) || (s2 + 2 < end && buf[s2 + 2] !== SPACE)) return undefined;
  const ms = rfc3339(buf, start, s1);
  if (Number.isNaN(ms)) return undefined;
  return {
    timestamp: buf.toString("latin1", start, s1),
    time: new Date(ms),
    stream,
    partial: tag === 0x50,
    contentStart: Math.min(s2 + 3, end),
  };
}

function anyHeader(buf: Buffer, start: number, end: number, whole: boolean): RecordHeader | string {
  const limit = Math.min(end, start + HEADER_MAX);
  let s1 = -1;
  let s2 = -1;
  let s3 = -1;
  for (let i = start; i < limit; i++) {
    if (buf[i] !== SPACE) continue;
    if (s1 < 0) s1 = i;
    else if (s2 < 0) s2 = i;
    else {
      s3 = i;
      break;
    }
  }
  if (s2 < 0) return "no timestamp and stream fields";
  const stream = s2 - s1 === 7 ? streamAt(buf, s1 + 1) : undefined;
  if (!stream) return "the stream is neither stdout nor stderr";
  // Older runtimes wrote no tag field; CRI requires it now. Content is whatever follows one space.
  if (s3 < 0 && (!whole || end - start > HEADER_MAX)) return "no tags field";
  const tagEnd = s3 < 0 ? end : s3;
  let partial: boolean;
  const tag = tagEnd === s2 + 2 ? buf[s2 + 1] : undefined;
  if (tag === 0x46 || tag === 0x50) partial = tag === 0x50;
  else {
    const tags = buf.toString("latin1", s2 + 1, tagEnd).split(":");
    if (!tags.every((t) => t === "P" || t === "F" || t === "")) return "unknown tags";
    partial = tags.includes("P");
  }
  const timestamp = buf.toString("latin1", start, s1);
  const ms = rfc3339(buf, start, s1);
  const time = new Date(Number.isNaN(ms) ? timestamp : ms);
  if (Number.isNaN(time.getTime())) return "the timestamp is not a time";
  return { timestamp, time, stream, partial, contentStart: s3 < 0 ? end : s3 + 1 };
}

const STDOUT = Buffer.from("stdout");
const STDERR = Buffer.from("stderr");

function streamAt(buf: Buffer, at: number): LogStream | undefined {
  // "std" then "out" or "err", compared as bytes (no string made per record).
  for (let i = 0; i < 3; i++) if (buf[at + i] !== STDOUT[i]) return undefined;
  if (buf[at + 3] === STDOUT[3] && buf[at + 4] === STDOUT[4] && buf[at + 5] === STDOUT[5]) return "stdout";
  if (buf[at + 3] === STDERR[3] && buf[at + 4] === STDERR[4] && buf[at + 5] === STDERR[5]) return "stderr";
  return undefined;
}

/** The two-digit number at `at`, or -1. */
function two(buf: Buffer, at: number): number {
  const a = (buf[at] as number) - 0x30;
  const b = (buf[at + 1] as number) - 0x30;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * Milliseconds of the common RFC 3339 shape the runtimes write (YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)),
 * read from the bytes; NaN for anything else, which `Date` then parses (it is a fifth of a line's cost).
 * Values agree with `Date`'s: fraction truncated to milliseconds, a day past the month's end rolls over.
 */
function rfc3339(buf: Buffer, start: number, end: number): number {
  if (end - start < 20 || buf[start + 4] !== 0x2d || buf[start + 7] !== 0x2d || buf[start + 10] !== 0x54)
    return Number.NaN;
  if (buf[start + 13] !== 0x3a || buf[start + 16] !== 0x3a) return Number.NaN;
  const century = two(buf, start);
  const year = century * 100 + two(buf, start + 2);
  const month = two(buf, start + 5);
  const day = two(buf, start + 8);
  const hour = two(buf, start + 11);
  const minute = two(buf, start + 14);
  const second = two(buf, start + 17);
  if (century < 1 || year < century * 100 || month < 1 || month > 12 || day < 1 || day > 31)
    return Number.NaN;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return Number.NaN;
  let i = start + 19;
  let millis = 0;
  if (buf[i] === 0x2e) {
    const from = ++i;
    for (; i < end; i++) {
      const d = (buf[i] as number) - 0x30;
      if (d < 0 || d > 9) break;
      if (i - from < 3) millis = millis * 10 + d;
    }
    if (i === from) return Number.NaN;
    for (let k = i - from; k < 3; k++) millis *= 10;
  }
  let offset = 0;
  if (i === end - 6 && (buf[i] === 0x2b || buf[i] === 0x2d) && buf[i + 3] === 0x3a) {
    const oh = two(buf, i + 1);
    const om = two(buf, i + 4);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return Number.NaN;
    offset = (buf[i] === 0x2b ? 1 : -1) * (oh * 60 + om) * 60_000;
  } else if (i !== end - 1 || buf[i] !== 0x5a) return Number.NaN;
  const seconds = ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second;
  return seconds * 1000 + millis - offset;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (a day past the month's end runs on, as in Date). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * ((month + 9) % 12) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** Parse one record (without its trailing newline). Throws ProtocolError on a malformed line. */
export function parseCriLogRecord(line: Buffer | string): CriLogRecord {
  const buf = typeof line === "string" ? Buffer.from(line, "utf8") : line;
  const h = parseHeader(buf, 0, buf.length, true);
  if (typeof h === "string") throw malformed(h);
  return {
    timestamp: h.timestamp,
    time: h.time,
    stream: h.stream,
    partial: h.partial,
    content: buf.subarray(h.contentStart),
  };
}

/** The file's own bytes are not quoted: a log path may name any file (a hostile runtime's answer). */
function malformed(reason: string, offset?: number, backend = "cri"): ProtocolError {
  const where = offset === undefined ? "" : ` at byte ${offset}`;
  return new ProtocolError(`not a CRI log record${where}: ${reason}`, { operation: "logs", backend });
}

/** `buf[from, to)` in a Buffer of its own (small ones come from Node's pool). */
function copyOut(buf: Buffer, from: number, to: number): Buffer {
  const data = Buffer.allocUnsafe(to - from);
  data.set(buf.subarray(from, to));
  return data;
}

/**
 * Format output as CRI log records: each whole line a full ("F") record, a trailing piece without its
 * newline a partial ("P") one, and lines longer than `maxRecord` bytes (default 16 KiB) split into
 * partials, as containerd and CRI-O write them.
 */
export function formatCriLogRecords(
  stream: LogStream,
  chunk: Uint8Array,
  time: Date | string = new Date(),
  maxRecord = 16 * 1024,
): Buffer {
  const ts = typeof time === "string" ? time : time.toISOString();
  const data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const parts: Buffer[] = [];
  const record = (tag: "P" | "F", content: Buffer) =>
    parts.push(Buffer.from(`${ts} ${stream} ${tag} `, "latin1"), content, NEWLINE);
  let start = 0;
  while (start < data.length) {
    const nl = data.indexOf(0x0a, start);
    const end = nl < 0 ? data.length : nl;
    for (let i = start; i < end || i === start; i += maxRecord) {
      const stop = Math.min(end, i + maxRecord);
      record(stop === end && nl >= 0 ? "F" : "P", data.subarray(i, stop));
      if (stop === end) break;
    }
    start = nl < 0 ? data.length : nl + 1;
  }
  return Buffer.concat(parts);
}

const NEWLINE = Buffer.from("\n");

export interface CriLogDecoderOptions {
  /**
   * Longest line kept in memory, in bytes (default 1 MiB). A longer line, whether the runtime split it into
   * partial records or one record is that long (no runtime writes such records: they split at 16 KiB, so
   * it comes from a hostile or broken writer), comes out in pieces of at least this size (up to the end
   * of the chunk being read), each marked `partial` but the last; their bytes joined are the line. Memory
   * stays bounded by this, per stream.
   */
  maxLineBytes?: number;
  /** Skip malformed lines instead of throwing. */
  lenient?: boolean;
  /** Names the backend in errors (default "cri"). */
  backend?: string;
}

/** A line's records so far, copied (the chunks they came in are not kept), grown by doubling. */
interface Pending {
  buf: Buffer;
  size: number;
  parts: number;
  timestamp: string;
  time: Date;
}

/**
 * Incremental decoder: feed file bytes, get whole lines. It keeps views of the chunks it is given until
 * the records in them are complete: do not reuse a chunk's memory after pushing it.
 */
export class CriLogDecoder {
  /** The start of a record still waiting for its newline. */
  #rest: Buffer[] = [];
  #restLength = 0;
  /** Inside a record longer than the line cap: its header (null: a malformed one, skipped to its end). */
  #long: RecordHeader | null | undefined;
  /** Bytes pushed before the current chunk, and where the current record starts (for errors). */
  #offset = 0;
  #recordStart = 0;
  readonly #pending = new Map<LogStream, Pending>();
  readonly #max: number;
  readonly #lenient: boolean;
  readonly #backend: string;

  constructor(options: CriLogDecoderOptions = {}) {
    const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.#backend = options.backend ?? "cri";
    if (typeof max !== "number" || !(max >= 1)) {
      throw new ValidationError(`logs: maxLineBytes must be a positive number of bytes, not ${String(max)}`, {
        operation: "logs",
        backend: this.#backend,
      });
    }
    this.#max = max;
    this.#lenient = options.lenient ?? false;
  }

  push(chunk: Buffer): CriLogEntry[] {
    const out: CriLogEntry[] = [];
    const base = this.#offset;
    this.#offset += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const nl = chunk.indexOf(NEWLINE_BYTE, off);
      const end = nl < 0 ? chunk.length : nl;
      if (this.#long !== undefined) this.#longPiece(chunk.subarray(off, end), nl >= 0, out);
      else if (nl < 0) this.#hold(chunk.subarray(off), out);
      else if (this.#restLength === 0) this.#line(chunk, off, nl, out);
      else {
        this.#rest.push(chunk.subarray(off, nl));
        const line = Buffer.concat(this.#rest, this.#restLength + nl - off);
        this.#rest = [];
        this.#restLength = 0;
        this.#line(line, 0, line.length, out);
      }
      if (nl < 0) break;
      off = nl + 1;
      this.#recordStart = base + off;
    }
    return out;
  }

  /** Flush: lines still waiting for their final part come out marked partial. */
  end(): CriLogEntry[] {
    const out: CriLogEntry[] = [];
    for (const [stream, p] of this.#pending) out.push(entry(p, stream, true));
    this.#pending.clear();
    return out;
  }

  #malformed(reason: string): ProtocolError {
    return malformed(reason, this.#recordStart, this.#backend);
  }

  /** The record in `buf[start, end)`. */
  #line(buf: Buffer, start: number, end: number, out: CriLogEntry[]): void {
    if (start === end) return;
    const h = parseHeader(buf, start, end, true);
    if (typeof h === "string") {
      if (this.#lenient) return;
      throw this.#malformed(h);
    }
    const e = this.#record(h, h.partial, buf, h.contentStart, end);
    if (e) out.push(e);
  }

  /** Part of a record whose newline has not come yet. */
  #hold(piece: Buffer, out: CriLogEntry[]): void {
    this.#rest.push(piece);
    this.#restLength += piece.length;
    if (this.#restLength <= Math.max(this.#max, HEADER_MAX)) return;
    // Longer than any line kept whole: go on without holding the record, piece by piece.
    const start = Buffer.concat(this.#rest, this.#restLength);
    this.#rest = [];
    this.#restLength = 0;
    const h = parseHeader(start, 0, start.length, false);
    if (typeof h === "string") {
      if (!this.#lenient) throw this.#malformed(h);
      this.#long = null;
      return;
    }
    this.#long = h;
    this.#longPiece(start.subarray(h.contentStart), false, out);
  }

  /** Content of an over-long record; `last`: its newline came. */
  #longPiece(content: Buffer, last: boolean, out: CriLogEntry[]): void {
    const h = this.#long;
    if (last) this.#long = undefined;
    if (!h || (content.length === 0 && !last)) return;
    const e = this.#record(h, last ? h.partial : true, content, 0, content.length);
    if (e) out.push(e);
  }

  /** Content `buf[from, to)` of a record with header `h`. */
  #record(h: RecordHeader, partial: boolean, buf: Buffer, from: number, to: number): CriLogEntry | undefined {
    const p = this.#pending.get(h.stream);
    if (!p && !partial) {
      // The usual case: a whole line in one record.
      const data = copyOut(buf, from, to);
      const { timestamp, time, stream } = h;
      return { timestamp, time, stream, content: data.toString(), data, parts: 1, partial };
    }
    const q = p ?? { buf: Buffer.allocUnsafe(0), size: 0, parts: 0, timestamp: "", time: h.time };
    const n = to - from;
    if (q.size + n > q.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(q.size + n, Math.min(q.buf.length * 2, this.#max)));
      q.buf.copy(grown, 0, 0, q.size);
      q.buf = grown;
    }
    buf.copy(q.buf, q.size, from, to);
    q.size += n;
    q.parts += 1;
    q.timestamp = h.timestamp;
    q.time = h.time;
    if (partial && q.size < this.#max) {
      if (!p) this.#pending.set(h.stream, q);
      return undefined;
    }
    this.#pending.delete(h.stream);
    return entry(q, h.stream, partial);
  }
}

function entry(p: Pending, stream: LogStream, partial: boolean): CriLogEntry {
  // Copied out at its size: the buffer grew by doubling.
  const data = copyOut(p.buf, 0, p.size);
  return {
    timestamp: p.timestamp,
    time: p.time,
    stream,
    content: data.toString(),
    data,
    parts: p.parts,
    partial,
  };
}

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
