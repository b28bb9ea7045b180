// A hostile streaming server against the SPDY session, after the HTTP/2 flood CVEs (2019-9512 ping flood,
// 2019-9514 reset flood, 2019-9515 settings flood): every flood ends the session with a ProtocolError
// instead of queueing answers or frames without bound. The peer is a fake server playing the attacker.
import { randomBytes } from "node:crypto";
import { ProtocolError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { openStreamSession } from "../src/index.js";
import {
  encodeData,
  encodeHeaders,
  encodePing,
  encodeSettings,
  encodeSynStream,
  SettingsId,
} from "../src/spdy/frames.js";
import { upgradeToSpdy } from "../src/spdy/upgrade.js";
import { type FakePeer, route } from "./spdy-peer.js";

const MIB = 1024 * 1024;
const success = JSON.stringify({ metadata: {}, status: "Success" });
const exec = (url: string) =>
  openStreamSession(url, { operation: "Exec", stdin: false, stderr: false, transport: "spdy" });

/** Write `frames` repeated `times`, waiting for the socket to drain, until done or the socket is gone. */
async function flood(peer: FakePeer, frames: Buffer, times: number): Promise<void> {
  for (let i = 0; i < times && !peer.socket.destroyed; i++) {
    if (!peer.socket.write(frames)) {
      await new Promise<void>((resolve) => {
        peer.socket.once("drain", resolve);
        peer.socket.once("close", resolve);
      });
    }
  }
}

/** The session's status stream, then a clean end: what a well-behaved server sends after the attack. */
async function finish(peer: FakePeer): Promise<void> {
  if (peer.socket.destroyed) return;
  await peer.data(peer.stream("error")?.id ?? 0, success, true);
  await peer.data(peer.stream("stdout")?.id ?? 0, "", true);
  await peer.end();
}

describe("SPDY floods", () => {
  it("a PING flood whose answers the peer never reads closes the session (CVE-2019-9512)", {
    timeout: 60_000,
  }, async () => {
    const url = route(async (peer) => {
      await peer.accept(2);
      // Read nothing more: every answer stays queued on our side.
      peer.socket.pause();
      const pings = Buffer.concat(Array.from({ length: 10_000 }, (_, i) => encodePing(2 * i + 2)));
      await flood(peer, pings, 200);
    });
    const { connection } = await upgradeToSpdy(url, { operation: "Exec", protocols: ["v4.channel.k8s.io"] });
    connection.openStream({ streamtype: "error" });
    connection.openStream({ streamtype: "stdout" });
    const closed = await connection.closed;
    expect(closed.error).toBeInstanceOf(ProtocolError);
    expect(closed.error?.message).toMatch(/answers/);
  });

  it("DATA on streams the client never opened, each answered with a reset, closes the session", async () => {
    const url = route(async (peer) => {
      await peer.accept(2);
      await flood(peer, Buffer.concat(Array.from({ length: 5_000 }, () => encodeData(2, Buffer.of(1)))), 1);
      await finish(peer);
    });
    const s = await exec(url);
    s.stdout.resume();
    await expect(s.exit).rejects.toThrow(ProtocolError);
  });

  it("server-pushed streams are refused, and a flood of them closes the session (CVE-2019-9514)", async () => {
    const url = route(async (peer) => {
      await peer.accept(2);
      const frames: Buffer[] = [];
      for (let i = 1; i <= 500; i++) {
        frames.push(encodeSynStream({ streamId: 2 * i, headerBlock: await peer.compress({ x: "y" }) }));
      }
      await flood(peer, Buffer.concat(frames), 1);
      await finish(peer);
    });
    const s = await exec(url);
    s.stdout.resume();
    await expect(s.exit).rejects.toThrow(ProtocolError);
  });

  it("SETTINGS with thousands of entries, or a window past 2^31-1, is a ProtocolError (CVE-2019-9515)", async () => {
    const many = Array.from({ length: 20_000 }, () => ({
      id: SettingsId.ROUND_TRIP_TIME,
      flags: 0,
      value: 1,
    }));
    const huge = [{ id: SettingsId.INITIAL_WINDOW_SIZE, flags: 0, value: 0xffff_ffff }];
    for (const entries of [many, huge]) {
      const url = route(async (peer) => {
        await peer.accept(2);
        await peer.send(() => encodeSettings(entries));
        await finish(peer);
      });
      const s = await exec(url);
      s.stdout.resume();
      await expect(s.exit).rejects.toThrow(ProtocolError);
    }
  });

  it("a frame announcing more than the frame cap fails at once, not when its megabytes arrive", async () => {
    const url = route(async (peer) => {
      const [, stdout] = await peer.accept(2);
      // A data frame of 16 MiB - 1 bytes: its header, then only 1 MiB of it, and the connection held open.
      const frame = encodeData(stdout?.id ?? 0, Buffer.alloc(0xff_ffff, 7));
      await flood(peer, frame.subarray(0, MIB), 1);
    });
    const s = await exec(url);
    s.stdout.resume();
    await expect(s.exit).rejects.toThrow(ProtocolError);
  });

  it("HEADERS frames piling up behind header decompression pause the socket instead", {
    timeout: 60_000,
  }, async () => {
    let sent = 0;
    const url = route(async (peer) => {
      const [, stdout] = await peer.accept(2);
      // Incompressible header blocks of 60 KiB: each costs an inflate, while their bytes arrive at once.
      const frames: Buffer[] = [];
      for (let i = 0; i < 256; i++) {
        const block = await peer.compress({ x: randomBytes(45 * 1024).toString("base64") });
        frames.push(encodeHeaders(stdout?.id ?? 0, block));
      }
      const all = Buffer.concat(frames);
      sent = all.length;
      await flood(peer, all, 1);
      await finish(peer);
    });
    const { connection } = await upgradeToSpdy(url, { operation: "Exec", protocols: ["v4.channel.k8s.io"] });
    connection.openStream({ streamtype: "error" });
    connection.openStream({ streamtype: "stdout" });
    let peak = 0;
    const sample = setInterval(() => {
      peak = Math.max(peak, connection.bufferedBytes);
    }, 1);
    await connection.closed;
    clearInterval(sample);
    expect(sent).toBeGreaterThan(8 * MIB);
    expect(peak).toBeLessThan(2 * MIB);
  });
});
