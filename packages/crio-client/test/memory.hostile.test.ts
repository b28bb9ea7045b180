// Memory bounds against a hostile CRI-O endpoint and streaming server (issue 13): each streams 256 MiB
// (BERTH_HOSTILE_MIB) as fast as the client takes it. CRI-O's HTTP answers are cut at their cap; exec
// output over SPDY and WebSocket reaches a consumer slower than the server, and the socket pauses instead
// of the session buffering; an error channel flood ends the session. The peak growth
// (test/support/memory-probe.ts) stays under 32 MiB; each case prints a `hostile-input:` line.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { ProtocolError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import type { WebSocket } from "ws";
import {
  HOSTILE_BYTES,
  HOSTILE_MIB,
  MIB,
  measurePeak,
  pump,
  report,
} from "../../../test/support/memory-probe.js";
import { CrioHttpClient, openStreamSession } from "../src/index.js";
import { encodeData } from "../src/spdy/frames.js";
import { type FakePeer, route, routeWebSocket } from "./spdy-peer.js";

const T = { timeout: 300_000 };
const success = JSON.stringify({ metadata: {}, status: "Success" });
/** Bytes the hostile server wrote in the current case. */
let sent: Promise<number> = Promise.resolve(0);

/** Reads `stream` to its end, yielding to timers every MiB: a consumer slower than the server. */
async function slowly(stream: Readable): Promise<number> {
  let bytes = 0;
  let next = MIB;
  for await (const chunk of stream) {
    bytes += (chunk as Buffer).length;
    if (bytes >= next) {
      next += MIB;
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  return bytes;
}

/** Writes `frame` until `total` bytes of frames are out, waiting for the socket to drain each time. */
function frames(peer: FakePeer, frame: Buffer, total: number): Promise<number> {
  const socket = peer.socket;
  return pump(socket, frame, Math.floor(total / frame.length) * frame.length, { end: false });
}

/** SPDY exec output: `size` bytes of DATA frames on stdout (or the error stream), then a success status. */
function spdyExec(size: number, on: "stdout" | "error" = "stdout") {
  return route(async (peer) => {
    await peer.accept(2);
    const id = peer.stream(on)?.id ?? 0;
    sent = frames(peer, encodeData(id, Buffer.alloc(512 * 1024, 0x6f)), size);
    await sent;
    if (peer.socket.destroyed) return;
    await peer.data(peer.stream("error")?.id ?? 0, success, true);
    await peer.data(peer.stream("stdout")?.id ?? 0, "", true);
    await peer.end();
  });
}

const exec = (url: string, transport: "spdy" | "websocket") =>
  openStreamSession(url, { operation: "Exec", stdin: false, stderr: false, transport });

describe(`a CRI-O endpoint or streaming server sending ${HOSTILE_MIB} MiB`, () => {
  it("a CRI-O HTTP answer that never ends is cut at 4 MiB: ProtocolError", T, async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-crio-memory-"));
    let hostile = false;
    const server = createServer((_req, res: ServerResponse) => {
      res.on("error", () => {});
      if (!hostile) return void res.writeHead(200, { "content-type": "application/json" }).end("{}");
      res.writeHead(200, { "content-type": "application/json" });
      sent = pump(res, Buffer.alloc(MIB, 0x20), HOSTILE_BYTES, { head: Buffer.from('{"x":"') });
    });
    const socketPath = join(dir, "crio.sock");
    await new Promise<void>((r) => server.listen(socketPath, r));
    try {
      const client = new CrioHttpClient({ socketPath, timeout: 60_000 });
      const m = await measurePeak(() => client.info(), {
        warm: async () => {
          await client.info();
          hostile = true;
        },
      });
      report("crio http answer (info)", await sent, m);
      expect(m.error).toBeInstanceOf(ProtocolError);
      expect(await sent).toBeLessThan(HOSTILE_BYTES);
    } finally {
      server.closeAllConnections();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("SPDY exec output to a slow consumer: the socket pauses, memory stays flat", T, async () => {
    let bytes = 0;
    const run = async (size: number) => {
      const s = await exec(spdyExec(size), "spdy");
      bytes = await slowly(s.stdout);
      return s.exit;
    };
    const m = await measurePeak(() => run(HOSTILE_BYTES), { warm: () => run(32 * MIB) });
    report("spdy exec stdout (slow consumer)", await sent, m);
    expect(m.error).toBeUndefined();
    expect(bytes).toBe((await sent) - ((await sent) / (512 * 1024 + 8)) * 8);
  });

  it(
    "SPDY exec: an error channel flooded with 256 MiB ends the session at 64 KiB: ProtocolError",
    T,
    async () => {
      const run = async (on: "stdout" | "error") => {
        const s = await exec(spdyExec(on === "error" ? HOSTILE_BYTES : MIB, on), "spdy");
        s.stdout.resume();
        return s.exit;
      };
      const m = await measurePeak(() => run("error"), { warm: () => run("stdout") });
      report("spdy exec error channel flood", await sent, m);
      expect(m.error).toBeInstanceOf(ProtocolError);
      expect(await sent).toBeLessThan(HOSTILE_BYTES);
    },
  );

  it("WebSocket exec output to a slow consumer: the socket pauses, memory stays flat", T, async () => {
    const message = Buffer.concat([Buffer.of(1), Buffer.alloc(512 * 1024 - 1, 0x6f)]);
    const serve = (size: number) =>
      routeWebSocket((ws: WebSocket) => {
        sent = (async () => {
          let n = 0;
          while (n < size && ws.readyState === ws.OPEN) {
            await new Promise<void>((resolve) => ws.send(message, () => resolve()));
            n += message.length;
          }
          ws.send(Buffer.concat([Buffer.of(3), Buffer.from(success)]));
          ws.close(1000);
          return n;
        })();
      });
    let bytes = 0;
    const run = async (size: number) => {
      const s = await exec(serve(size), "websocket");
      bytes = await slowly(s.stdout);
      return s.exit;
    };
    const m = await measurePeak(() => run(HOSTILE_BYTES), { warm: () => run(32 * MIB) });
    report("websocket exec stdout (slow consumer)", await sent, m);
    expect(m.error).toBeUndefined();
    expect(bytes).toBe(((await sent) / message.length) * (message.length - 1));
  });
});
