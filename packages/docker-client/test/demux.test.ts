import { ProtocolError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { demultiplex } from "../src/streams/demux.js";

function frame(type: number, payload: string | Uint8Array): Uint8Array {
  const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const out = new Uint8Array(8 + data.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(4, data.length);
  out.set(data, 8);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(chunks: AsyncIterable<Uint8Array>) {
  const out = { stdout: "", stderr: "", frames: 0 };
  const dec = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  for await (const f of demultiplex(chunks)) {
    out.frames++;
    if (f.stream === "stdout" || f.stream === "stderr")
      out[f.stream] += dec[f.stream].decode(f.data, { stream: true });
  }
  return out;
}

describe("demultiplex", () => {
  const body = concat([frame(1, "hello "), frame(2, "oops\n"), frame(1, "world\n"), frame(1, "")]);

  it("splits stdout and stderr", async () => {
    const r = await collect(chunked(body, body.length));
    expect(r.stdout).toBe("hello world\n");
    expect(r.stderr).toBe("oops\n");
  });

  it("gives the same bytes whatever the chunk boundaries", async () => {
    for (const size of [1, 2, 3, 7, 8, 9, 13]) {
      const r = await collect(chunked(body, size));
      expect([r.stdout, r.stderr]).toEqual(["hello world\n", "oops\n"]);
    }
  });

  it("hands out views of the received chunk, not copies", async () => {
    const chunk = frame(1, "abc");
    for await (const f of demultiplex(chunked(chunk, chunk.length))) {
      expect(f.data.buffer).toBe(chunk.buffer);
    }
  });

  it("is binary-safe", async () => {
    const bin = new Uint8Array(256).map((_, i) => i);
    const got: number[] = [];
    for await (const f of demultiplex(chunked(concat([frame(1, bin), frame(2, bin)]), 5)))
      got.push(...f.data);
    expect(got).toEqual([...bin, ...bin]);
  });

  it("rejects a malformed header with a ProtocolError", async () => {
    const bad = frame(1, "x");
    bad[0] = 9;
    await expect(collect(chunked(bad, 64))).rejects.toBeInstanceOf(ProtocolError);
  });

  it("rejects a stream that ends inside a frame", async () => {
    const truncated = frame(1, "truncated").subarray(0, 12);
    await expect(collect(chunked(truncated, 4))).rejects.toThrow(/ended inside a frame/);
  });
});
