// The CRI log decoder: file bytes in, whole lines out, partial records merged per stream, in memory
// bounded by the longest line kept (a longer one comes out in pieces).
import { HEADER_MAX, type LogStream, malformed, parseHeader, type RecordHeader } from "./cri-log-record.js";
import { type ProtocolError, ValidationError } from "./errors.js";

/** A whole line, partials merged. */
export interface CriLogEntry {
  /** Timestamp of the record that completed the line. */
  timestamp: string;
  /** The same timestamp as a Date (millisecond precision). */
  time: Date;
  /** The stream the line was written to. */
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

const NEWLINE_BYTE = 0x0a;
/** The longest line kept whole unless `maxLineBytes` says otherwise. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

/** `buf[from, to)` in a Buffer of its own (small ones come from Node's pool). */
function copyOut(buf: Buffer, from: number, to: number): Buffer {
  const data = Buffer.allocUnsafe(to - from);
  data.set(buf.subarray(from, to));
  return data;
}

/** Options of CriLogDecoder (and of readCriLogs). */
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

  /**
   * Feeds the next chunk of the file and returns the lines it completed (none while a line is still
   * open). A malformed record is a ProtocolError unless `lenient`.
   */
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
