// Exec, attach and port-forward sessions over SPDY against a fake Kubernetes streaming server built from
// the same framing code: stream setup and headers, stdin half-close, exit statuses of v2-v4, dropped
// connections, aborts, flow control, pings, a refused upgrade falling back to WebSocket.
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import {
  AbortedError,
  DaemonError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { exitFromErrorChannel, openPortForward, openStreamSession } from "../src/index.js";
import {
  encodeData,
  encodePing,
  encodeSettings,
  encodeWindowUpdate,
  RstStatus,
  SettingsId,
} from "../src/spdy/frames.js";
import type { SpdyHeaders } from "../src/spdy/headers.js";
import { upgradeToSpdy } from "../src/spdy/upgrade.js";
import { base, type FakePeer, type PeerStream, route, seen } from "./spdy-peer.js";

const success = JSON.stringify({ metadata: {}, status: "Success" });
const exec = (url: string, extra: Partial<Parameters<typeof openStreamSession>[1]> = {}) =>
  openStreamSession(url, { operation: "Exec", stdin: true, transport: "spdy", ...extra });

describe("exec over SPDY", () => {
  it("upgrades with the Kubernetes headers and opens one stream per channel", async () => {
    let streams: PeerStream[] = [];
    const url = route(async (peer) => {
      streams = await peer.accept(4);
      await peer.data(peer.stream("error")?.id ?? 0, success);
      for (const s of streams) await peer.rst(s.id);
      await peer.end();
    });
    const s = await exec(url);
    expect(await s.exit).toMatchObject({ exitCode: 0 });
    const req = seen.at(-1) as IncomingMessage;
    expect(req.method).toBe("POST");
    expect(req.headers.upgrade).toBe("SPDY/3.1");
    expect(req.headers.connection).toBe("Upgrade");
    // One header line per offered protocol, best first (Go reads them as a list).
    const offered = req.rawHeaders.filter((_, i) => req.rawHeaders[i - 1] === "X-Stream-Protocol-Version");
    expect(offered).toEqual([
      "v4.channel.k8s.io",
      "v3.channel.k8s.io",
      "v2.channel.k8s.io",
      "channel.k8s.io",
    ]);
    expect(streams.map((x) => [x.id, x.headers.streamtype])).toEqual([
      [1, ["error"]],
      [3, ["stdin"]],
      [5, ["stdout"]],
      [7, ["stderr"]],
    ]);
    expect(s.transport).toBe("spdy");
    expect(s.protocol).toBe("v4.channel.k8s.io");
    expect(s.stdinClosable).toBe(true);
  });

  it("ending stdin sends FIN; output, stderr and a non-zero exit come back", async () => {
    const url = route(async (peer) => {
      await peer.accept(4);
      const stdin = await peer.until(() => peer.stream("stdin")?.fin && peer.stream("stdin"));
      const text = Buffer.concat(stdin.data).toString();
      await peer.data(peer.stream("stdout")?.id ?? 0, text.toUpperCase(), true);
      await peer.data(peer.stream("stderr")?.id ?? 0, "warn\n", true);
      await peer.data(
        peer.stream("error")?.id ?? 0,
        JSON.stringify({
          status: "Failure",
          reason: "NonZeroExitCode",
          message: "command terminated with non-zero exit code: exit code 5",
          details: { causes: [{ reason: "ExitCode", message: "5" }] },
        }),
      );
      for (const s of peer.streams) if (!s.fin) await peer.rst(s.id);
      await peer.end();
    });
    const s = await exec(url);
    const out = await s.output("hello\nworld\n");
    expect(out.stdout.toString()).toBe("HELLO\nWORLD\n");
    expect(out.stderr.toString()).toBe("warn\n");
    expect(out.exitCode).toBe(5);
  });

  it("a TTY gets a resize stream and no stderr stream; resizes arrive as JSON", async () => {
    let resize: PeerStream | undefined;
    const url = route(async (peer) => {
      await peer.accept(4);
      resize = peer.stream("resize");
      await peer.until(() => resize && resize.data.length >= 2);
      await peer.data(peer.stream("error")?.id ?? 0, success);
      await peer.end();
    });
    const s = await exec(url, { tty: true });
    s.resize(80, 24);
    s.resize(120, 40);
    await expect(s.exit).resolves.toMatchObject({ exitCode: 0 });
    expect(resize?.data.map(String)).toEqual(['{"Width":80,"Height":24}', '{"Width":120,"Height":40}']);
  });

  it("only the streams the request asked for are opened", async () => {
    let types: string[] = [];
    const url = route(async (peer) => {
      const streams = await peer.accept(2);
      types = streams.map((s) => s.headers.streamtype?.[0] ?? "");
      await peer.data(streams[0]?.id ?? 0, success, true);
      await peer.end();
    });
    const s = await exec(url, { stdin: false, stderr: false });
    await expect(s.exit).resolves.toMatchObject({ exitCode: 0 });
    expect(types).toEqual(["error", "stdout"]);
  });

  it("frames the server writes a byte at a time still decode", async () => {
    const url = route(async (peer) => {
      const streams = await peer.accept(4);
      // Collect what the server would send, then dribble it out.
      const out: Buffer[] = [];
      out.push(encodeData(streams[2]?.id ?? 0, Buffer.from("dribbled output"), true));
      out.push(encodeData(streams[0]?.id ?? 0, Buffer.from(success), true));
      const all = Buffer.concat(out);
      await peer.send(() => Buffer.alloc(0));
      for (const byte of all) {
        peer.socket.write(Uint8Array.of(byte));
        await new Promise((r) => setImmediate(r));
      }
      await peer.end();
    });
    const s = await exec(url);
    const out = await s.output();
    expect(out.stdout.toString()).toBe("dribbled output");
    expect(out.exitCode).toBe(0);
  });

  it("a connection dropped mid-stream ends the session with UnavailableError, promptly", async () => {
    const url = route(async (peer) => {
      await peer.accept(4);
      await peer.data(peer.stream("stdout")?.id ?? 0, "partial");
      await new Promise((r) => setTimeout(r, 50));
      peer.socket.destroy();
    });
    const s = await exec(url);
    const chunks: Buffer[] = [];
    s.stdout.on("data", (c: Buffer) => chunks.push(c));
    const t0 = Date.now();
    await expect(s.exit).rejects.toBeInstanceOf(UnavailableError);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(Buffer.concat(chunks).toString()).toBe("partial");
    // stdin writes after the drop fail quietly (the error is `exit`'s).
    s.stdin?.write("late");
  });

  it("a status cut short by a drop is UnavailableError, not a parse error", async () => {
    const url = route(async (peer) => {
      await peer.accept(4);
      await peer.data(peer.stream("error")?.id ?? 0, success.slice(0, 10));
      await peer.send(() => Buffer.alloc(0));
      peer.socket.destroy();
    });
    const s = await exec(url);
    await expect(s.exit).rejects.toBeInstanceOf(UnavailableError);
  });

  it("aborting closes the connection and fails exit with AbortedError", async () => {
    let peerClosed: Promise<void> | undefined;
    const url = route(async (peer) => {
      peerClosed = peer.closed;
      await peer.accept(4);
    });
    const ac = new AbortController();
    const s = await exec(url, { signal: ac.signal });
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 20);
    await expect(s.exit).rejects.toBeInstanceOf(AbortedError);
    await peerClosed;
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it("a server that never answers the streams fails the open with TimeoutError; abort fails it too", async () => {
    const url = route(() => {});
    await expect(exec(url, { handshakeTimeout: 200 })).rejects.toBeInstanceOf(TimeoutError);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(
      exec(
        route(() => {}),
        { signal: ac.signal },
      ),
    ).rejects.toBeInstanceOf(AbortedError);
  });

  it("garbage from the server is a ProtocolError", async () => {
    const url = route(async (peer) => {
      await peer.accept(4);
      // A control frame claiming SPDY version 2.
      peer.socket.write(Buffer.from("8002000100000000", "hex"));
    });
    const s = await exec(url);
    await expect(s.exit).rejects.toBeInstanceOf(ProtocolError);
  });

  it("a stream the server resets during setup fails the open", async () => {
    const url = route(async (peer) => {
      const [first] = await peer.until(() => peer.streams.length >= 4 && peer.streams);
      await peer.rst(first?.id ?? 0, RstStatus.REFUSED_STREAM);
    });
    await expect(exec(url)).rejects.toThrow(/REFUSED_STREAM/);
  });

  it("v3 and earlier: text on the error stream, nothing on success", async () => {
    const v3 = route(async (peer) => {
      await peer.accept(4);
      await peer.data(
        peer.stream("error")?.id ?? 0,
        "command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7",
        true,
      );
      await peer.end();
    }, "v3.channel.k8s.io");
    const s3 = await exec(v3);
    expect(s3.protocol).toBe("v3.channel.k8s.io");
    expect((await s3.exit).exitCode).toBe(7);

    const v2 = route(async (peer) => {
      for (const s of await peer.accept(4)) await peer.rst(s.id);
      await peer.end();
    }, "v2.channel.k8s.io");
    expect((await (await exec(v2)).exit).exitCode).toBe(0);

    // A server that names no protocol is a v1 server.
    const v1 = route(async (peer) => {
      await peer.accept(4);
      await peer.data(peer.stream("error")?.id ?? 0, "container not running", true);
      await peer.end();
    }, "");
    const s1 = await exec(v1);
    expect(s1.protocol).toBe("");
    await expect(s1.exit).rejects.toBeInstanceOf(DaemonError);

    // Without a clean end of the error stream, silence is a drop, not success.
    expect(() =>
      exitFromErrorChannel("", "v2.channel.k8s.io", { clean: false, detail: "dropped" }, "Exec"),
    ).toThrow(UnavailableError);
  });

  it("answers the server's PINGs, and pings it", async () => {
    const url = route(async (peer) => {
      await peer.accept(4);
      await peer.send(() => encodePing(2));
      await peer.until(() => peer.frames.some((f) => f.type === "ping" && f.id === 2));
      await peer.data(peer.stream("error")?.id ?? 0, success, true);
      await peer.end();
    });
    const s = await exec(url);
    await expect(s.exit).resolves.toMatchObject({ exitCode: 0 });
  });
});

describe("transport selection", () => {
  it("auto falls back to WebSocket when the server refuses SPDY, with a fresh URL", async () => {
    let asked = 0;
    const s = await openStreamSession(`${base}/refuses-spdy`, {
      operation: "Exec",
      stdin: false,
      fallbackUrl: async () => {
        asked++;
        return `${base}/fresh`;
      },
    });
    expect(asked).toBe(1);
    expect(s.transport).toBe("websocket");
    expect(new URL(seen.at(-1)?.url ?? "", base).pathname).toBe("/fresh");
    await expect(s.exit).resolves.toMatchObject({ exitCode: 0 });
  });

  it("transport spdy reports the refusal as a ProtocolError with the HTTP status", async () => {
    const err = await exec(`${base}/refuses-spdy`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).status).toBe(400);
    expect((err as ProtocolError).daemonMessage).toBe("unable to upgrade: nope");
  });

  it("a connection refused is UnavailableError and is not retried over WebSocket", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    let asked = 0;
    const err = await openStreamSession(`http://127.0.0.1:${port}/x`, {
      operation: "Exec",
      stdin: false,
      fallbackUrl: async () => {
        asked++;
        return "";
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(asked).toBe(0);
  });
});

describe("SPDY flow control", () => {
  it("adaptive (default): a peer that never sends WINDOW_UPDATE still gets everything", async () => {
    let peerRef: FakePeer | undefined;
    const url = route(async (peer) => {
      peerRef = peer;
      await peer.accept(1);
    });
    const { connection } = await upgradeToSpdy(url, { operation: "t", protocols: ["v4.channel.k8s.io"] });
    const s = connection.openStream({ streamtype: "stdin" });
    await s.reply;
    await s.write(Buffer.alloc(200_000, 1));
    await s.end();
    const st = await (peerRef as FakePeer).until(() => peerRef?.streams[0]?.fin && peerRef.streams[0]);
    expect(Buffer.concat(st.data).length).toBe(200_000);
    connection.destroy();
  });

  it("strict: stops at the 64 KiB window until the peer opens it, per stream and session", async () => {
    let peerRef: FakePeer | undefined;
    const url = route(async (peer) => {
      peerRef = peer;
      await peer.accept(1);
    });
    const { connection } = await upgradeToSpdy(url, {
      operation: "t",
      protocols: ["v4.channel.k8s.io"],
      flowControl: "strict",
    });
    const s = connection.openStream({ streamtype: "stdin" });
    await s.reply;
    const peer = peerRef as FakePeer;
    const received = () => Buffer.concat(peer.streams[0]?.data ?? []).length;
    let done = false;
    const writing = s.write(Buffer.alloc(100_000, 2)).then(() => {
      done = true;
    });
    await peer.until(() => received() === 65_536);
    await new Promise((r) => setTimeout(r, 100));
    expect(received()).toBe(65_536);
    expect(done).toBe(false);
    // The stream window alone is not enough: the session window is spent too.
    await peer.send(() => encodeWindowUpdate(1, 50_000));
    await new Promise((r) => setTimeout(r, 100));
    expect(received()).toBe(65_536);
    await peer.send(() => encodeWindowUpdate(0, 50_000));
    await writing;
    await peer.until(() => received() === 100_000);
    // SETTINGS INITIAL_WINDOW_SIZE moves every open stream's window.
    await peer.send(() => encodeSettings([{ id: SettingsId.INITIAL_WINDOW_SIZE, flags: 0, value: 1 << 20 }]));
    await peer.send(() => encodeWindowUpdate(0, 1 << 20));
    await peer.until(() => peer.frames.length > 0);
    await s.write(Buffer.alloc(500_000, 3));
    await peer.until(() => received() === 600_000);
    connection.destroy();
  });

  /** A peer that sends 40 000 bytes on the first stream, after SETTINGS if `settings`. */
  async function received(settings: boolean) {
    let peerRef: FakePeer | undefined;
    const url = route(async (peer) => {
      peerRef = peer;
      if (settings)
        await peer.send(() =>
          encodeSettings([{ id: SettingsId.MAX_CONCURRENT_STREAMS, flags: 0, value: 100 }]),
        );
      const [st] = await peer.accept(1);
      await peer.data(st?.id ?? 0, Buffer.alloc(40_000, 4), true);
    });
    const { connection } = await upgradeToSpdy(url, { operation: "t", protocols: ["v4.channel.k8s.io"] });
    let got = 0;
    await new Promise<void>((resolve) => {
      connection.openStream(
        { streamtype: "stdout" },
        { fin: true, ondata: (c) => (got += c.length), onend: () => resolve() },
      );
    });
    expect(got).toBe(40_000);
    // Frames go out in order: once the ping is answered, any updates have arrived.
    expect(await connection.ping()).toBeGreaterThanOrEqual(0);
    connection.destroy();
    return peerRef?.frames.filter((f) => f.type === "window_update");
  }

  it("credits the windows of a peer that keeps them (it sent SETTINGS) as data is delivered", async () => {
    expect(await received(true)).toEqual([
      { type: "window_update", streamId: 0, delta: 40_000 },
      { type: "window_update", streamId: 1, delta: 40_000 },
    ]);
  });

  it("sends spdystream-like peers no WINDOW_UPDATE (one arriving after they close resets the TCP connection)", async () => {
    expect(await received(false)).toEqual([]);
  });
});

describe("port-forward over SPDY", () => {
  it("opens error and data streams with port and requestID, half-closes, and reads the reply", async () => {
    let headers: SpdyHeaders[] = [];
    let errorFin = false;
    const url = route(async (peer, req) => {
      expect(req.headers["x-stream-protocol-version"]).toBe("portforward.k8s.io");
      const streams = await peer.accept(2);
      headers = streams.map((s) => s.headers);
      const [err, data] = streams as [PeerStream, PeerStream];
      errorFin = await peer.until(() => err.fin);
      await peer.until(() => data.fin);
      await peer.data(data.id, `echo:${Buffer.concat(data.data).toString()}`, true);
      await peer.data(err.id, "", true);
    }, "portforward.k8s.io");
    const s = await openPortForward(url, 8080, { transport: "spdy" });
    expect(s.transport).toBe("spdy");
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.end("ping");
    await new Promise((r) => s.once("end", r));
    expect(Buffer.concat(chunks).toString()).toBe("echo:ping");
    expect(headers).toEqual([
      { streamtype: ["error"], port: ["8080"], requestid: ["0"] },
      { streamtype: ["data"], port: ["8080"], requestid: ["0"] },
    ]);
    expect(errorFin).toBe(true);
  });

  it("text on the error stream fails the stream with it", async () => {
    const url = route(async (peer) => {
      const [err, data] = (await peer.accept(2)) as [PeerStream, PeerStream];
      await peer.data(err.id, "failed to connect to localhost:9: connection refused", true);
      await peer.data(data.id, "", true);
    }, "portforward.k8s.io");
    const s = await openPortForward(url, 9, { transport: "spdy" });
    s.resume();
    const err = await new Promise((r) => s.once("error", r));
    expect(err).toBeInstanceOf(DaemonError);
    expect((err as Error).message).toContain("connection refused");
  });

  it("a dropped connection fails the stream with UnavailableError", async () => {
    const url = route(async (peer) => {
      const [, data] = (await peer.accept(2)) as [PeerStream, PeerStream];
      await peer.data(data.id, "some");
      await peer.send(() => Buffer.alloc(0));
      peer.socket.destroy();
    }, "portforward.k8s.io");
    const s = await openPortForward(url, 80, { transport: "spdy" });
    s.resume();
    const err = await new Promise((r) => s.once("error", r));
    expect(err).toBeInstanceOf(UnavailableError);
  });
});
