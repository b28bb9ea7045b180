// Docker's multiplexed stdout/stderr stream: frames of [type, 0, 0, 0, size (u32 BE)] + payload.
// Payloads are handed out as views into the received chunks: a frame split across chunks becomes several
// frames of the same stream, so no byte is ever copied.
import { ProtocolError } from "@berth/runtime-core";
import type { StreamFrame } from "../operation.js";

const STREAMS = ["stdin", "stdout", "stderr", "system"] as const;
const HEADER = 8;

/** Demultiplex an async iterable of chunks into frames. Throws ProtocolError on a malformed header or
 *  a stream that ends inside a frame. */
export async function* demultiplex(
  chunks: AsyncIterable<Uint8Array>,
  operation = "stream",
): AsyncGenerator<StreamFrame> {
  const header = new Uint8Array(HEADER);
  let headerFill = 0;
  let remaining = 0;
  let stream: StreamFrame["stream"] = "stdout";
  for await (const chunk of chunks) {
    let pos = 0;
    const len = chunk.byteLength;
    while (pos < len) {
      if (remaining > 0) {
        const n = Math.min(remaining, len - pos);
        yield { stream, data: chunk.subarray(pos, pos + n) };
        pos += n;
        remaining -= n;
        continue;
      }
      // Fast path: a whole header inside this chunk.
      let h: Uint8Array;
      let base: number;
      if (headerFill === 0 && len - pos >= HEADER) {
        h = chunk;
        base = pos;
        pos += HEADER;
      } else {
        const n = Math.min(HEADER - headerFill, len - pos);
        header.set(chunk.subarray(pos, pos + n), headerFill);
        headerFill += n;
        pos += n;
        if (headerFill < HEADER) break;
        headerFill = 0;
        h = header;
        base = 0;
      }
      const type = h[base] as number;
      if (type > 3 || h[base + 1] !== 0 || h[base + 2] !== 0 || h[base + 3] !== 0) {
        throw new ProtocolError(
          `${operation}: malformed multiplexed stream header (bytes ${Array.from(h.subarray(base, base + 4)).join(",")})`,
          { operation },
        );
      }
      stream = STREAMS[type] as StreamFrame["stream"];
      remaining =
        (((h[base + 4] as number) << 24) >>> 0) +
        ((h[base + 5] as number) << 16) +
        ((h[base + 6] as number) << 8) +
        (h[base + 7] as number);
    }
  }
  if (remaining > 0 || headerFill > 0) {
    throw new ProtocolError(`${operation}: multiplexed stream ended inside a frame`, { operation });
  }
}

/** A raw (TTY) stream: every chunk is stdout. */
export async function* rawFrames(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<StreamFrame> {
  for await (const chunk of chunks) yield { stream: "stdout", data: chunk };
}
