// Newline-delimited JSON: one object per line, lines split anywhere across chunks. An object carrying
// `error`/`errorDetail` is how the daemon reports a failure inside a 200 stream: it is thrown, typed.
import { ProtocolError } from "@berth/runtime-core";
import { errorFromMessage } from "../errors.js";

const NEWLINE = 0x0a;

interface StreamErrorObject {
  error?: unknown;
  errorDetail?: { code?: unknown; message?: unknown } | null;
  message?: unknown;
}

/** What a daemon's error object says, whatever type its fields have (String() of an object can throw). */
function messageOf(obj: StreamErrorObject): string {
  const detail = obj.errorDetail;
  const said = (detail && typeof detail === "object" ? detail.message : undefined) ?? obj.error;
  if (said === undefined || said === null) return "unknown error";
  return typeof said === "string" ? said : JSON.stringify(said);
}

/** The typed error for an error object found inside a stream from `backend`. */
export function streamError(obj: StreamErrorObject, operation: string, backend = "docker") {
  const message = messageOf(obj);
  return errorFromMessage(message, { operation, daemonMessage: message, backend });
}

export interface NdjsonOptions {
  /** Most bytes of one line; past it, a ProtocolError (default 4 MiB). */
  maxLineBytes?: number;
  /** The backend named by the errors (default "docker"; a DockerClient passes its own). */
  backend?: string;
}

/**
 * Parses newline-delimited JSON as it arrives, one value per line (blank lines skipped). A line that is
 * not JSON or longer than `maxLineBytes` is a ProtocolError; a line carrying the daemon's `error` field
 * is thrown as the berth error it describes.
 */
export async function* ndjson<T>(
  chunks: AsyncIterable<Uint8Array>,
  operation = "stream",
  { maxLineBytes = 4 * 2 ** 20, backend = "docker" }: NdjsonOptions = {},
): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let pending = "";
  /** Bytes of the line being gathered across chunks. */
  let pendingBytes = 0;
  const tooLong = () =>
    new ProtocolError(
      `${operation}: a line of the stream is longer than maxJsonLineBytes (${maxLineBytes} bytes)`,
      { operation, backend },
    );
  const parse = (line: string): T | undefined => {
    const text = line.trim();
    if (!text) return undefined;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (cause) {
      throw new ProtocolError(`${operation}: invalid JSON line in stream: ${text.slice(0, 200)}`, {
        operation,
        backend,
        cause,
      });
    }
    if (obj && typeof obj === "object" && ("error" in obj || "errorDetail" in obj)) {
      const e = obj as StreamErrorObject;
      if (e.error || e.errorDetail) throw streamError(e, operation, backend);
    }
    return obj as T;
  };
  for await (const chunk of chunks) {
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    while (nl !== -1) {
      if (pendingBytes + nl - start > maxLineBytes) throw tooLong();
      const line = pending + decoder.decode(chunk.subarray(start, nl));
      pending = "";
      pendingBytes = 0;
      const value = parse(line);
      if (value !== undefined) yield value;
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.byteLength) {
      pendingBytes += chunk.byteLength - start;
      if (pendingBytes > maxLineBytes) throw tooLong();
      pending += decoder.decode(chunk.subarray(start), { stream: true });
    }
  }
  pending += decoder.decode();
  const last = parse(pending);
  if (last !== undefined) yield last;
}
