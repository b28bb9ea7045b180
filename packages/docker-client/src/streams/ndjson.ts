// Newline-delimited JSON: one object per line, lines split anywhere across chunks. An object carrying
// `error`/`errorDetail` is how the daemon reports a failure inside a 200 stream: it is thrown, typed.
import { ProtocolError } from "@berth/runtime-core";
import { errorFromMessage } from "../errors.js";

const NEWLINE = 0x0a;

interface StreamErrorObject {
  error?: unknown;
  errorDetail?: { code?: number; message?: string };
  message?: unknown;
}

/** The typed error for an error object found inside a stream. */
export function streamError(obj: StreamErrorObject, operation: string) {
  const message = String(obj.errorDetail?.message ?? obj.error ?? "unknown error");
  return errorFromMessage(message, { operation, daemonMessage: message, backend: "docker" });
}

export async function* ndjson<T>(chunks: AsyncIterable<Uint8Array>, operation = "stream"): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let pending = "";
  const parse = (line: string): T | undefined => {
    const text = line.trim();
    if (!text) return undefined;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (cause) {
      throw new ProtocolError(`${operation}: invalid JSON line in stream: ${text.slice(0, 200)}`, {
        operation,
        cause,
      });
    }
    if (obj && typeof obj === "object" && ("error" in obj || "errorDetail" in obj)) {
      const e = obj as StreamErrorObject;
      if (e.error || e.errorDetail) throw streamError(e, operation);
    }
    return obj as T;
  };
  for await (const chunk of chunks) {
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    while (nl !== -1) {
      const line = pending + decoder.decode(chunk.subarray(start, nl));
      pending = "";
      const value = parse(line);
      if (value !== undefined) yield value;
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.byteLength) pending += decoder.decode(chunk.subarray(start), { stream: true });
  }
  pending += decoder.decode();
  const last = parse(pending);
  if (last !== undefined) yield last;
}
