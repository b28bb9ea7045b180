// CRI container logs: the files a runtime writes under the sandbox's log directory, one record a line:
//   <RFC3339Nano time> <stdout|stderr> <tags> <content>
// where tags is "F" (full line) or "P" (partial: the runtime split a long line, 16 KiB in containerd and
// CRI-O, and the rest follows). Readers merge partials back into whole lines, per stream.
import { type FSWatcher, watch } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { AbortedError, ProtocolError } from "./errors.js";

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

/** Parse one record (without its trailing newline). Throws ProtocolError on a malformed line. */
export function parseCriLogRecord(line: Buffer | string): CriLogRecord {
  const buf = typeof line === "string" ? Buffer.from(line, "utf8") : line;
  const s1 = buf.indexOf(SPACE);
  const s2 = s1 < 0 ? -1 : buf.indexOf(SPACE, s1 + 1);
  if (s1 < 0 || s2 < 0) throw malformed(buf);
  const timestamp = buf.subarray(0, s1).toString("latin1");
  const stream = buf.subarray(s1 + 1, s2).toString("latin1");
  if (stream !== "stdout" && stream !== "stderr") throw malformed(buf);
  // Older runtimes wrote no tag field; CRI requires it now. Content is whatever follows one space.
  const s3 = buf.indexOf(SPACE, s2 + 1);
  const tagEnd = s3 < 0 ? buf.length : s3;
  const tags = buf
    .subarray(s2 + 1, tagEnd)
    .toString("latin1")
    .split(":");
  if (!tags.every((t) => t === "P" || t === "F" || t === "")) throw malformed(buf);
  const time = new Date(timestamp);
  if (Number.isNaN(time.getTime())) throw malformed(buf);
  return {
    timestamp,
    time,
    stream,
    partial: tags.includes("P"),
    content: s3 < 0 ? Buffer.alloc(0) : buf.subarray(s3 + 1),
  };
}

function malformed(buf: Buffer): ProtocolError {
  return new ProtocolError(`not a CRI log record: ${JSON.stringify(buf.subarray(0, 120).toString("utf8"))}`, {
    operation: "logs",
    backend: "cri",
  });
}

function bytes(data: Buffer): { data: Buffer; content: string } {
  return { data, content: data.toString("utf8") };
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
  /** Longest merged line kept in memory (default 16 MiB); longer lines are emitted in pieces, partial. */
  maxLineBytes?: number;
  /** Skip malformed lines instead of throwing. */
  lenient?: boolean;
}

/** Incremental decoder: feed file bytes, get whole lines. */
export class CriLogDecoder {
  #rest: Buffer = Buffer.alloc(0);
  readonly #pending = new Map<LogStream, { chunks: Buffer[]; size: number; parts: number }>();
  readonly #max: number;
  readonly #lenient: boolean;

  constructor(options: CriLogDecoderOptions = {}) {
    this.#max = options.maxLineBytes ?? 16 * 1024 * 1024;
    this.#lenient = options.lenient ?? false;
  }

  push(chunk: Buffer): CriLogEntry[] {
    const out: CriLogEntry[] = [];
    let buf = this.#rest.length ? Buffer.concat([this.#rest, chunk]) : chunk;
    let nl = buf.indexOf(0x0a);
    while (nl >= 0) {
      const line = buf.subarray(0, nl);
      buf = buf.subarray(nl + 1);
      nl = buf.indexOf(0x0a);
      if (line.length === 0) continue;
      let record: CriLogRecord;
      try {
        record = parseCriLogRecord(line);
      } catch (err) {
        if (this.#lenient) continue;
        throw err;
      }
      const entry = this.#record(record);
      if (entry) out.push(entry);
    }
    this.#rest = Buffer.from(buf);
    return out;
  }

  /** Flush: lines still waiting for their final part come out marked partial. */
  end(): CriLogEntry[] {
    const out: CriLogEntry[] = [];
    for (const [stream, p] of this.#pending) {
      out.push({
        timestamp: "",
        time: new Date(Number.NaN),
        stream,
        ...bytes(Buffer.concat(p.chunks)),
        parts: p.parts,
        partial: true,
      });
      const last = this.#lastTime.get(stream);
      if (last) {
        const e = out[out.length - 1] as CriLogEntry;
        e.timestamp = last.timestamp;
        e.time = last.time;
      }
    }
    this.#pending.clear();
    return out;
  }

  readonly #lastTime = new Map<LogStream, { timestamp: string; time: Date }>();

  #record(r: CriLogRecord): CriLogEntry | undefined {
    const p = this.#pending.get(r.stream) ?? { chunks: [], size: 0, parts: 0 };
    p.chunks.push(r.content);
    p.size += r.content.length;
    p.parts += 1;
    const tooLong = p.size >= this.#max;
    if (r.partial && !tooLong) {
      this.#pending.set(r.stream, p);
      this.#lastTime.set(r.stream, { timestamp: r.timestamp, time: r.time });
      return undefined;
    }
    this.#pending.delete(r.stream);
    return {
      timestamp: r.timestamp,
      time: r.time,
      stream: r.stream,
      ...bytes(Buffer.concat(p.chunks)),
      parts: p.parts,
      partial: r.partial,
    };
  }
}

export interface ReadCriLogsOptions extends CriLogDecoderOptions {
  /** Keep reading as the file grows, across rotation (rename + new file) and truncation. */
  follow?: boolean;
  /** Only lines at or after this time. */
  since?: Date;
  /** Only the last N lines present when reading starts (then, when following, everything new). */
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
  /** Names the backend in errors (default "cri"). */
  backend?: string;
}

const CHUNK = 64 * 1024;

/**
 * Read a CRI log file as whole lines. With `follow`, waits for more; when the file is renamed away
 * (rotation) it drains the old file and reopens the path; a truncated file is read again from the start.
 */
export async function* readCriLogs(
  path: string,
  options: ReadCriLogsOptions = {},
): AsyncGenerator<CriLogEntry> {
  const { signal, since, tail, follow } = options;
  const streams = options.streams ? new Set(options.streams) : undefined;
  const wanted = (e: CriLogEntry) =>
    (!streams || streams.has(e.stream)) && (!since || Number.isNaN(e.time.getTime()) || e.time >= since);
  const checkAbort = () => {
    if (signal?.aborted) {
      throw new AbortedError("logs: aborted", {
        operation: "logs",
        backend: options.backend ?? "cri",
        cause: signal.reason,
      });
    }
  };
  checkAbort();

  const decoder = new CriLogDecoder(options);
  let fh: FileHandle = await open(path, "r");
  let ino = (await fh.stat()).ino;
  let position = 0;
  const buf = Buffer.allocUnsafe(CHUNK);

  /** Read what is there now; returns the lines decoded. */
  const drain = async (): Promise<CriLogEntry[]> => {
    const out: CriLogEntry[] = [];
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, position);
      if (bytesRead === 0) return out;
      position += bytesRead;
      for (const e of decoder.push(Buffer.from(buf.subarray(0, bytesRead)))) if (wanted(e)) out.push(e);
    }
  };

  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  const onAbort = () => wake?.();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    // The backlog: with `tail`, keep only the last N (a ring, so memory stays at N lines).
    const backlog: CriLogEntry[] = [];
    for (;;) {
      const batch = await drain();
      if (batch.length === 0) break;
      for (const e of batch) {
        backlog.push(e);
        if (tail !== undefined && backlog.length > tail) backlog.shift();
      }
    }
    if (!follow) {
      for (const e of decoder.end()) {
        if (wanted(e)) {
          backlog.push(e);
          if (tail !== undefined && backlog.length > tail) backlog.shift();
        }
      }
    }
    if (tail === 0) backlog.length = 0;
    for (const e of backlog) {
      checkAbort();
      yield e;
    }
    if (!follow) return;

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
      for (const e of await drain()) {
        checkAbort();
        yield e;
      }
      // Rotated (renamed, new file at the path) or truncated? Old data is drained above.
      const now = await stat(path).catch(() => undefined);
      if (now && now.ino !== ino) {
        await fh.close();
        fh = await open(path, "r");
        ino = (await fh.stat()).ino;
        position = 0;
        continue;
      }
      if (now && now.size < position) {
        position = 0;
        continue;
      }
      if (options.until && (await options.until())) {
        // Done: whatever was written before the end was signalled is read, then lines left open.
        for (const e of [...(await drain()), ...decoder.end()]) {
          if (!wanted(e)) continue;
          checkAbort();
          yield e;
        }
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
