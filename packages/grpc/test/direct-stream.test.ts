// The direct (node:http2) bidi transport against a small HTTP/2 server playing a gRPC daemon that
// misbehaves on purpose: the real daemon (containerd) covers the happy path in the integration suites,
// these cover the answers it never gives on demand.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortedError,
  NotFoundError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrpcChannel } from "../src/index.js";
import type { ServiceDefinition } from "../src/types.js";
import { Bytes, failure } from "./support.js";

const Echo = {
  name: "Echo",
  fullName: "test.Echo",
  methods: {
    chat: {
      name: "Chat",
      requestType: Bytes,
      requestStream: true,
      responseType: Bytes,
      responseStream: true,
    },
  },
} as const satisfies ServiceDefinition;

function frame(payload: Buffer, compressed = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed;
  head.writeUInt32BE(payload.byteLength, 1);
  return Buffer.concat([head, payload]);
}

/** How the server answers, by the request's `x-mode` header. */
type Mode =
  | "echo"
  | "trailers-only"
  | "compressed"
  | "truncated"
  | "reset"
  | "silent"
  | "drop"
  | "split"
  | "oversized";

let server: Http2Server;
let dir: string;
let socket: string;
const sessions = new Set<ServerHttp2Session>();
const seen: { headers: Record<string, unknown>; bytes: number }[] = [];

function answer(stream: ServerHttp2Stream, mode: Mode): void {
  const ok = () =>
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  const parts: Buffer[] = [];
  const trailers = (status = "0", message?: string) => {
    stream.once("wantTrailers", () =>
      stream.sendTrailers({ "grpc-status": status, ...(message ? { "grpc-message": message } : {}) }),
    );
  };
  switch (mode) {
    case "trailers-only":
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": "5",
          "grpc-message": encodeURIComponent("blob sha256:x: not found"),
        },
        { endStream: true },
      );
      return;
    case "compressed":
      ok();
      trailers();
      stream.end(frame(Buffer.from("zz"), 1));
      return;
    case "truncated":
      ok();
      trailers();
      stream.end(frame(Buffer.from("hello")).subarray(0, 7));
      return;
    case "oversized":
      ok();
      trailers();
      stream.end(Buffer.from([0, 0x7f, 0xff, 0xff, 0xff]));
      return;
    case "reset":
      ok();
      stream.close(2); // INTERNAL_ERROR
      return;
    case "silent":
      ok();
      return;
    case "drop":
      ok();
      stream.session?.destroy();
      return;
    default:
  }
  ok();
  trailers();
  let total = 0;
  stream.on("data", (c: Buffer) => {
    parts.push(c);
    total += c.byteLength;
  });
  stream.on("end", () => {
    seen.push({ headers: {}, bytes: total });
    // Echo every request message back; "split" sends each answer a byte at a time.
    const all = Buffer.concat(parts);
    const out: Buffer[] = [];
    for (let at = 0; at + 5 <= all.byteLength; ) {
      const n = all.readUInt32BE(at + 1);
      out.push(frame(all.subarray(at + 5, at + 5 + n)));
      at += 5 + n;
    }
    const bytes = Buffer.concat(out);
    if (mode === "split") for (const b of bytes) stream.write(Buffer.from([b]));
    else stream.write(bytes);
    stream.end();
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "berth-direct-"));
  socket = join(dir, "grpc.sock");
  server = createServer();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    seen.push({ headers: { ...headers }, bytes: -1 });
    answer(stream, String(headers["x-mode"] ?? "echo") as Mode);
  });
  await new Promise<void>((r) => server.listen(socket, r));
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function client(address = socket, metadata: Record<string, string> = {}) {
  const channel = new GrpcChannel({ address, backend: "test", directStreams: true, metadata });
  return { channel, echo: channel.service(Echo) };
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const m of stream) out.push(m);
  return out;
}

describe("direct bidi streams (node:http2)", () => {
  it("sends messages as they are (pre-encoded too) with the metadata, and reads the answers in order", async () => {
    const { channel, echo } = client(socket, { "containerd-namespace": "ns1" });
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const reqs = [Buffer.from("one"), new Uint8Array(big), Buffer.from("three")];
    const out = await collect(echo.chat(reqs as never) as AsyncIterable<Buffer>);
    expect(out.map((b) => b.byteLength)).toEqual([3, big.byteLength, 5]);
    expect(out[1]?.equals(big)).toBe(true);
    expect(seen.find((s) => s.headers["containerd-namespace"] === "ns1")?.headers["content-type"]).toBe(
      "application/grpc",
    );
    channel.close();
  });

  it("parses answers cut into single bytes", async () => {
    const { channel, echo } = client(socket, { "x-mode": "split" });
    const out = await collect(
      echo.chat([Buffer.from("abc"), Buffer.from("")] as never) as AsyncIterable<Buffer>,
    );
    expect(out.map((b) => b.toString())).toEqual(["abc", ""]);
    channel.close();
  });

  it("maps a trailers-only status to its typed error, message decoded", async () => {
    const { channel, echo } = client(socket, { "x-mode": "trailers-only" });
    const err = await failure(collect(echo.chat([Buffer.from("x")] as never) as AsyncIterable<Buffer>));
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain("blob sha256:x: not found");
    channel.close();
  });

  it.each([
    ["compressed", /compressed/],
    ["truncated", /inside a message/],
    ["oversized", /over/],
    ["reset", /stream reset/],
  ] as const)("a %s answer is a ProtocolError", async (mode, text) => {
    const { channel, echo } = client(socket, { "x-mode": mode });
    const err = await failure(collect(echo.chat([Buffer.from("x")] as never) as AsyncIterable<Buffer>));
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(text);
    channel.close();
  });

  it("a dropped connection is an UnavailableError, and the next call connects again", async () => {
    const { channel, echo } = client(socket, { "x-mode": "drop" });
    const err = await failure(collect(echo.chat([Buffer.from("x")] as never) as AsyncIterable<Buffer>));
    expect(err).toBeInstanceOf(UnavailableError);
    const again = channel.service(Echo, { metadata: { "x-mode": "echo" } });
    const out = await collect(again.chat([Buffer.from("back")] as never) as AsyncIterable<Buffer>);
    expect(out.map((b) => b.toString())).toEqual(["back"]);
    channel.close();
  });

  it("a timeout ends a silent call with a TimeoutError; an abort with an AbortedError", async () => {
    const { channel, echo } = client(socket, { "x-mode": "silent" });
    const t0 = Date.now();
    const late = await failure(
      collect(echo.chat([Buffer.from("x")] as never, { timeout: 200 }) as AsyncIterable<Buffer>),
    );
    expect(late).toBeInstanceOf(TimeoutError);
    expect(Date.now() - t0).toBeLessThan(5000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const aborted = await failure(
      collect(echo.chat([Buffer.from("x")] as never, { signal: ac.signal }) as AsyncIterable<Buffer>),
    );
    expect(aborted).toBeInstanceOf(AbortedError);
    channel.close();
  });

  it("a socket that does not exist is an UnavailableError naming it", async () => {
    const missing = join(dir, "nope.sock");
    const { channel, echo } = client(missing);
    const err = await failure(collect(echo.chat([Buffer.from("x")] as never) as AsyncIterable<Buffer>));
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(missing);
    channel.close();
  });

  it("cancel() ends the iteration quietly", async () => {
    const { channel, echo } = client(socket, { "x-mode": "silent" });
    const call = echo.chat([Buffer.from("x")] as never);
    setTimeout(() => call.cancel(), 100);
    expect(await collect(call as AsyncIterable<Buffer>)).toEqual([]);
    channel.close();
  });

  it("close() drops the connection at once, not after a goodbye", async () => {
    const { channel, echo } = client();
    await collect(echo.chat([Buffer.from("x")] as never) as AsyncIterable<Buffer>);
    const open = [...sessions];
    expect(open.length).toBeGreaterThan(0);
    const closed = Promise.all(open.map((s) => new Promise((r) => s.once("close", r))));
    channel.close();
    await closed;
    expect(sessions.size).toBe(0);
  });
});
