// One CRI log record, a line of the file a runtime writes under the sandbox's log directory:
//   <RFC3339Nano time> <stdout|stderr> <tags> <content>
// where tags is "F" (full line) or "P" (partial: the runtime split a long line, 16 KiB in containerd and
// CRI-O, and the rest follows). Parsing and writing records; the decoder merges them into lines.
import { ProtocolError } from "./errors.js";

/** The stream a CRI log record was written to. */
export type LogStream = "stdout" | "stderr";

/** One record as written: a whole line or a piece of one. */
export interface CriLogRecord {
  /** The timestamp as written (RFC3339 with nanoseconds). */
  timestamp: string;
  /** The same timestamp as a Date (millisecond precision). */
  time: Date;
  /** The stream it was written to. */
  stream: LogStream;
  /** True for a piece of a longer line (tag `P`); the line goes on in the next record of the stream. */
  partial: boolean;
  /** The bytes after the header, without the newline. */
  content: Buffer;
}

const SPACE = 0x20;
/** A record's header (timestamp, stream, tags) is looked for in this many bytes; a real one takes ~50. */
export const HEADER_MAX = 256;

export interface RecordHeader {
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
export function parseHeader(buf: Buffer, start: number, end: number, whole: boolean): RecordHeader | string {
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
export function malformed(reason: string, offset?: number, backend = "cri"): ProtocolError {
  const where = offset === undefined ? "" : ` at byte ${offset}`;
  return new ProtocolError(`not a CRI log record${where}: ${reason}`, { operation: "logs", backend });
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
