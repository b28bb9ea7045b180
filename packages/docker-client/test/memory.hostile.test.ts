// Memory bounds against a hostile daemon (issue 13): a fixture engine on a unix socket streams 256 MiB
// (BERTH_HOSTILE_MIB) at each surface of the client a daemon can stream into, as fast as the client reads.
// What the client gathers whole is cut at its cap with a typed error; what it streams is read in constant
// memory. Either way the peak growth (test/support/memory-probe.ts) stays under 32 MiB, and each case
// prints a `hostile-input:` line for the reliability summary.
import type { IncomingMessage, ServerResponse } from "node:http";
import { DaemonError, ProtocolError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HOSTILE_BYTES,
  HOSTILE_MIB,
  MIB,
  measurePeak,
  pump,
  report,
} from "../../../test/support/memory-probe.js";
import { serveUnix, type UnixServer } from "../../../test/support/unix-server.js";
import { DockerClient, pull } from "../src/index.js";

let daemon: UnixServer;
let answer: Answer = (_req, res) => res.end();
/** Bytes the fixture engine wrote for the current case, once its answer ended or the client hung up. */
let sent: Promise<number> = Promise.resolve(0);
let docker: DockerClient;

beforeAll(async () => {
  daemon = await serveUnix((req, res) => {
    res.on("error", () => {});
    answer(req, res);
  });
  docker = new DockerClient({ host: daemon.host, apiVersion: "1.41" });
});
afterAll(async () => {
  await docker?.close();
  await daemon?.close();
});

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

/** Answers with `status`, `type` and `total` bytes made of `block` (after `head`). */
const flood =
  (status: number, type: string, block: Buffer, head?: Buffer, total = HOSTILE_BYTES): Answer =>
  (_req, res) => {
    res.writeHead(status, { "content-type": type });
    sent = pump(res, block, total, head ? { head } : {});
  };

/**
 * The peak growth of `run` against the `hostile` answer. `run` first meets the `honest` one, so the code
 * paths it takes are compiled (and the allocator has seen such a call) before the baseline.
 */
async function attack<T>(honest: Answer, hostile: Answer, run: () => Promise<T>) {
  return measurePeak(run, {
    warm: async () => {
      answer = honest;
      await run().catch(() => {});
      answer = hostile;
    },
  });
}

/** A multiplexed frame header: stream, then the payload's length (big-endian). */
const frameHeader = (stream: number, length: number) => {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(length, 4);
  return h;
};

const T = { timeout: 300_000 };
const JSON_TYPE = "application/json";
const MUX = "application/vnd.docker.multiplexed-stream";

/** Frames of 32 KiB on stdout and 1 KiB on stderr, back to back, and the payload bytes they carry. */
const out = Buffer.concat([frameHeader(1, 32 * 1024 - 8), Buffer.alloc(32 * 1024 - 8, 0x6f)]);
const err = Buffer.concat([frameHeader(2, 1024 - 8), Buffer.alloc(1024 - 8, 0x65)]);
const frames = Buffer.concat(Array.from({ length: 32 }, (_, i) => (i % 8 === 7 ? err : out)));
const framesPayload = frames.length - 32 * 8;

describe(`a daemon streaming ${HOSTILE_MIB} MiB`, () => {
  it("a JSON answer that never ends is cut at maxJsonBytes: ProtocolError", T, async () => {
    const m = await attack(
      (_req, res) => res.writeHead(200, { "content-type": JSON_TYPE }).end('[{"Id":"x"}]'),
      flood(200, JSON_TYPE, Buffer.from('{"Id":"x","Names":["/x"]},'.repeat(2048)), Buffer.from("[")),
      () => docker.containers.list({ all: true }),
    );
    report("docker json answer (containers.list)", await sent, m);
    expect(m.error).toBeInstanceOf(ProtocolError);
    expect((m.error as Error).message).toMatch(/maxJsonBytes/);
    expect(await sent).toBeLessThan(HOSTILE_BYTES);
  });

  it(
    "a pull whose progress stream is one endless line is cut at maxJsonLineBytes: ProtocolError",
    T,
    async () => {
      let messages = 0;
      const m = await attack(
        (_req, res) =>
          res.writeHead(200, { "content-type": JSON_TYPE }).end('{"status":"Pulling"}\n{"status":"Done"}\n'),
        flood(200, JSON_TYPE, Buffer.alloc(MIB, 0x61), Buffer.from('{"status":"Pulling"}\n{"status":"')),
        () => {
          messages = 0;
          return pull(docker, "registry.invalid/x:1", { auth: false, onProgress: () => messages++ });
        },
      );
      report("docker ndjson progress line (pull)", await sent, m);
      expect(m.error).toBeInstanceOf(ProtocolError);
      expect((m.error as Error).message).toMatch(/maxJsonLineBytes/);
      expect(messages).toBe(1);
    },
  );

  it("a logs stream of multiplexed frames is read to its end in constant memory", T, async () => {
    // Whole blocks only, so the stream ends on a frame boundary.
    const blocks = Math.floor(HOSTILE_BYTES / frames.length);
    let bytes = 0;
    const m = await attack(
      flood(200, MUX, frames, undefined, 8 * frames.length),
      flood(200, MUX, frames, undefined, blocks * frames.length),
      async () => {
        bytes = 0;
        for await (const f of await docker.containers.logs({ id: "c", stdout: true, stderr: true })) {
          bytes += f.data.byteLength;
        }
      },
    );
    report("docker logs stream (multiplexed frames, read whole)", await sent, m);
    expect(m.error).toBeUndefined();
    expect(bytes).toBe(blocks * framesPayload);
  });

  it("a frame header declaring 4 GiB is streamed in views, then cut short: ProtocolError", T, async () => {
    let bytes = 0;
    const m = await attack(
      flood(200, MUX, frames, undefined, 8 * frames.length),
      flood(200, MUX, Buffer.alloc(MIB, 0x61), frameHeader(1, 0xffff_ffff)),
      async () => {
        bytes = 0;
        for await (const f of await docker.containers.logs({ id: "c", stdout: true })) {
          bytes += f.data.byteLength;
        }
      },
    );
    report("docker frame header of 4 GiB (logs)", await sent, m);
    expect(m.error).toBeInstanceOf(ProtocolError);
    expect((m.error as Error).message).toMatch(/ended inside a frame/);
    expect(bytes).toBe(HOSTILE_BYTES - 8);
  });

  it(`an error body of ${HOSTILE_MIB} MiB is read to 64 KiB: the status's typed error`, T, async () => {
    const m = await attack(
      (_req, res) => res.writeHead(500, { "content-type": JSON_TYPE }).end('{"message":"boom"}'),
      flood(500, JSON_TYPE, Buffer.alloc(MIB, 0x20), Buffer.from('{"message":"')),
      () => docker.containers.inspect({ id: "c" }),
    );
    report("docker error body (500)", await sent, m);
    expect(m.error).toBeInstanceOf(DaemonError);
    expect((m.error as Error).message.length).toBeLessThan(70 * 1024);
    expect(await sent).toBeLessThan(HOSTILE_BYTES);
  });
});
