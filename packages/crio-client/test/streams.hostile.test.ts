// Exec and port-forward sessions against a hostile streaming server, over SPDY and WebSocket: the error
// channel carries a small status and is capped, output waits for a slow consumer (the socket pauses), the
// status must have the shape of one, and the streaming URL the runtime hands out must be a loopback http(s)
// or ws(s) URL unless the caller names its host.
import { DaemonError, ProtocolError, TimeoutError, UnavailableError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import {
  type ChannelsSink,
  exitFromErrorChannel,
  openPortForward,
  openStreamSession,
  type StreamChannels,
  StreamSession,
} from "../src/index.js";
import { type FakePeer, route, routeWebSocket } from "./spdy-peer.js";

const KIB = 1024;
const MIB = 1024 * KIB;
const frame = (channel: number, payload: Buffer | string) =>
  Buffer.concat([Buffer.of(channel), typeof payload === "string" ? Buffer.from(payload) : payload]);

/** A settled promise's outcome, whichever way it went. */
const outcome = (p: Promise<unknown>) =>
  p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

describe("error channels are capped", () => {
  it("SPDY exec: a server writing megabytes on the error stream fails the session", async () => {
    const url = route(async (peer) => {
      await peer.accept(2);
      for (let i = 0; i < 64 && !peer.socket.destroyed; i++)
        await peer.data(peer.stream("error")?.id ?? 0, "x".repeat(32 * KIB));
    });
    const s = await openStreamSession(url, {
      operation: "Exec",
      stdin: false,
      stderr: false,
      transport: "spdy",
    });
    s.stdout.resume();
    const r = await outcome(s.exit);
    expect("error" in r && r.error).toBeInstanceOf(ProtocolError);
  });

  it("WebSocket exec: the same on channel 3", async () => {
    const url = routeWebSocket((ws) => {
      for (let i = 0; i < 64; i++) ws.send(frame(3, "x".repeat(32 * KIB)));
    });
    const s = await openStreamSession(url, { operation: "Exec", stdin: false, transport: "websocket" });
    s.stdout.resume();
    s.stderr.resume();
    const r = await outcome(s.exit);
    expect("error" in r && r.error).toBeInstanceOf(ProtocolError);
  });

  it("SPDY port-forward: a server writing megabytes on the error stream fails the stream", async () => {
    const url = route(async (peer) => {
      const [err] = await peer.accept(2);
      for (let i = 0; i < 64 && !peer.socket.destroyed; i++)
        await peer.data(err?.id ?? 0, "x".repeat(32 * KIB));
    }, "portforward.k8s.io");
    const s = await openPortForward(url, 80, { transport: "spdy" });
    s.resume();
    const err = await new Promise((resolve) => s.once("error", resolve));
    expect(err).toBeInstanceOf(ProtocolError);
  });

  it("WebSocket port-forward: the same on the error channel", async () => {
    const url = routeWebSocket((ws) => {
      ws.send(frame(0, Buffer.of(80, 0)));
      ws.send(frame(1, Buffer.of(80, 0)));
      for (let i = 0; i < 64; i++) ws.send(frame(1, "x".repeat(32 * KIB)));
    });
    const s = await openPortForward(url, 80, { transport: "websocket" });
    s.resume();
    const err = await new Promise((resolve) => s.once("error", resolve));
    expect(err).toBeInstanceOf(ProtocolError);
  });
});

describe("hostile frames and messages", () => {
  it("WebSocket: a message over the size cap is a ProtocolError, not buffered", async () => {
    const url = routeWebSocket((ws) => ws.send(frame(1, Buffer.alloc(8 * MIB))));
    const s = await openStreamSession(url, { operation: "Exec", stdin: false, transport: "websocket" });
    s.stdout.resume();
    s.stderr.resume();
    const r = await outcome(s.exit);
    expect("error" in r && r.error).toBeInstanceOf(ProtocolError);
  });

  it("SPDY: output before the server has accepted every stream is refused, not held", async () => {
    const url = route(async (peer) => {
      const [first] = await peer.until(() => peer.streams.length >= 2 && peer.streams);
      // One stream accepted, the other never: then output, megabytes of it.
      await peer.reply(first?.id ?? 0);
      const stdout = peer.stream("stdout")?.id ?? 0;
      for (let i = 0; i < 128 && !peer.socket.destroyed; i++) await peer.data(stdout, Buffer.alloc(32 * KIB));
    });
    const r = await outcome(
      openStreamSession(url, {
        operation: "Exec",
        stdin: false,
        stderr: false,
        transport: "spdy",
        handshakeTimeout: 20_000,
      }),
    );
    expect("error" in r && r.error).toBeInstanceOf(ProtocolError);
  });

  it("a status of the wrong shape is a typed error, never a TypeError", () => {
    const clean = { clean: true, detail: "closed" };
    for (const text of [
      "null",
      "5",
      '"Success"',
      "[]",
      '{"status":"Failure","details":{"causes":5}}',
      '{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[null,{"reason":"ExitCode","message":{}}]}}',
      '{"status":{"x":1},"message":{"y":2}}',
    ]) {
      let error: unknown;
      try {
        exitFromErrorChannel(text, "v4.channel.k8s.io", clean, "Exec");
      } catch (err) {
        error = err;
      }
      expect(error, text).toBeInstanceOf(Error);
      expect(
        [ProtocolError, DaemonError].some((c) => error instanceof c),
        `${text}: ${String(error)}`,
      ).toBe(true);
    }
  });
});

describe("backpressure", () => {
  /** A transport whose sink the test drives, recording pause and resume. */
  function fakeChannels() {
    const calls: string[] = [];
    let sink: ChannelsSink | undefined;
    const channels: StreamChannels = {
      transport: "spdy",
      protocol: "v4.channel.k8s.io",
      stdinClosable: true,
      start: (s) => {
        sink = s;
      },
      writeStdin: (_c, cb) => cb(),
      endStdin: (cb) => cb(),
      resize: () => {},
      pause: () => calls.push("pause"),
      resume: () => calls.push("resume"),
      close: () => {},
      terminate: () => {},
    };
    return { channels, calls, sink: () => sink as ChannelsSink };
  }

  it("stderr read while stdout is full does not resume the connection", async () => {
    const { channels, calls, sink } = fakeChannels();
    const s = new StreamSession(channels, { operation: "Exec", stdin: false });
    sink().stdout(Buffer.alloc(64 * KIB));
    sink().stderr(Buffer.alloc(64 * KIB));
    expect(calls).toEqual(["pause", "pause"]);
    // The consumer drains stderr only: stdout still holds 64 KiB, so reading must stay paused.
    while (s.stderr.read() !== null);
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(["pause", "pause"]);
    while (s.stdout.read() !== null);
    await new Promise((r) => setImmediate(r));
    expect(calls.at(-1)).toBe("resume");
  });
});

describe("the streaming URL", () => {
  const open = (url: string, extra: Partial<Parameters<typeof openStreamSession>[1]> = {}) =>
    outcome(openStreamSession(url, { operation: "Exec", stdin: false, handshakeTimeout: 500, ...extra }));

  it("must be http(s) or ws(s)", async () => {
    for (const url of ["file:///etc/passwd", "ftp://127.0.0.1/x", "unix:///run/x.sock", "not a url"]) {
      const r = await open(url);
      expect("error" in r && r.error, url).toBeInstanceOf(ProtocolError);
    }
  });

  it("must name a loopback host unless the caller allows the host", async () => {
    for (const url of ["http://192.0.2.1:9/exec/x", "http://example.com/exec/x", "ws://[2001:db8::1]/x"]) {
      const r = await open(url);
      expect("error" in r && r.error, url).toBeInstanceOf(ProtocolError);
      const p = await outcome(openPortForward(url, 80, { handshakeTimeout: 500 }));
      expect("error" in p && p.error, url).toBeInstanceOf(ProtocolError);
    }
    // Allowed: it is tried (and fails as a connection does, not as a refusal).
    const r = await open("http://192.0.2.1:9/exec/x", { streamingHosts: ["192.0.2.1"], transport: "spdy" });
    expect("error" in r && (r.error instanceof TimeoutError || r.error instanceof UnavailableError)).toBe(
      true,
    );
  });

  it("loopback names and addresses are accepted", async () => {
    const url = route(async (peer: FakePeer) => {
      await peer.accept(2);
      await peer.data(peer.stream("error")?.id ?? 0, JSON.stringify({ status: "Success" }), true);
      await peer.data(peer.stream("stdout")?.id ?? 0, "", true);
      await peer.end();
    });
    for (const u of [url, url.replace("127.0.0.1", "localhost")]) {
      const s = await openStreamSession(u, {
        operation: "Exec",
        stdin: false,
        stderr: false,
        transport: "spdy",
      });
      s.stdout.resume();
      expect((await s.exit).exitCode).toBe(0);
    }
  });
});
