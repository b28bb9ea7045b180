// Peak memory growth while a hostile peer streams at a client (issue 13: a hostile server streaming
// 256 MiB may not grow the client's memory by 32 MiB). Two figures, both from a baseline taken after a
// full collection:
// - rss: the process's resident set, sampled every 2 ms while the stream runs. The baseline is taken after
//   a warm-up that moves data through a socket once, so the growth of V8's young generation and of the
//   allocator's arenas that any I/O-heavy process reaches in its first hundred megabytes (some 40 MiB) is
//   not counted against the surface under test.
// - heap: live memory (the JS heap plus Buffers outside it) after a full collection, sampled every 50 ms
//   while the stream runs and once at its end. Garbage awaiting collection is not growth. (A collection
//   costs some 10 ms in a test worker, hence the interval: a peak shorter than 50 ms, such as a capped
//   read that ends within it, may fall between two samples; the RSS samples see it.)
// Each test prints one `hostile-input:` line, gathered by scripts/reliability.mjs.
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { isBerthError } from "@berth/runtime-core";
import { expect } from "vitest";

export const MIB = 1024 * 1024;
/** What a hostile peer sends: BERTH_HOSTILE_MIB MiB (default 256). */
export const HOSTILE_MIB = Number(process.env.BERTH_HOSTILE_MIB ?? 256);
export const HOSTILE_BYTES = HOSTILE_MIB * MIB;
/** The bound on either figure. */
export const BOUND_MIB = 32;

// Vitest's workers run without --expose-gc: turn it on here (as the load suite does).
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Live memory after a full collection and a turn of the event loop (ArrayBuffers are freed just after). */
async function collected(): Promise<{ rss: number; live: number }> {
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, live: m.heapUsed + m.arrayBuffers };
}

let warmed: Promise<void> | undefined;
/** Move 64 MiB through a unix socket once per process, read as a client reads a body. */
function warmUp(): Promise<void> {
  warmed ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-memory-probe-"));
    const path = join(dir, "warm.sock");
    const chunk = Buffer.alloc(64 * 1024, 0x77);
    const server = createServer((socket) => {
      let left = 64 * MIB;
      const pump = () => {
        while (left > 0) {
          left -= chunk.length;
          if (!socket.write(chunk)) return void socket.once("drain", pump);
        }
        socket.end();
      };
      pump();
    });
    server.listen(path);
    await once(server, "listening");
    const { connect } = await import("node:net");
    const socket = connect(path);
    for await (const piece of socket) void (piece as Buffer).length;
    server.close();
    await rm(dir, { recursive: true, force: true });
  })();
  return warmed;
}

export interface Peak {
  /** Peak RSS growth over the baseline, MiB. */
  rssMiB: number;
  /** Peak live-memory growth over the baseline, MiB. */
  heapMiB: number;
}

export interface Measured<T> extends Peak {
  /** What `run` resolved to, when it did. */
  value?: T;
  /** What it threw, when it did. */
  error?: unknown;
}

/** Runs `run` (which consumes the hostile stream) and measures the peak growth while it runs. */
export async function measurePeak<T>(
  run: () => Promise<T>,
  { warm }: { warm?: () => Promise<unknown> } = {},
): Promise<Measured<T>> {
  await warmUp();
  if (warm) await warm();
  const base = await collected();
  let rss = base.rss;
  let live = base.live;
  let ticks = 0;
  let collecting = false;
  const timer = setInterval(() => {
    rss = Math.max(rss, process.memoryUsage.rss());
    if (++ticks % 25 !== 0 || collecting) return;
    collecting = true;
    void collected().then((m) => {
      rss = Math.max(rss, m.rss);
      live = Math.max(live, m.live);
      collecting = false;
    });
  }, 2);
  const out: Measured<T> = { rssMiB: 0, heapMiB: 0 };
  try {
    out.value = await run();
  } catch (err) {
    out.error = err;
  } finally {
    clearInterval(timer);
  }
  const end = await collected();
  out.rssMiB = (Math.max(rss, end.rss) - base.rss) / MIB;
  out.heapMiB = (Math.max(live, end.live) - base.live) / MIB;
  return out;
}

/** How an attack ended, for the figure line: the typed error's class, "streamed", or "UNTYPED <name>". */
export function outcomeOf(m: { error?: unknown }): string {
  if (m.error === undefined) return "streamed";
  if (isBerthError(m.error)) return (m.error as Error).constructor.name;
  return `UNTYPED ${(m.error as Error)?.name ?? typeof m.error}`;
}

const mib = (n: number) => `${Math.max(0, n).toFixed(1)} MiB`;

/**
 * Prints the figure line, `hostile-input: <surface>: <n> MiB sent, <outcome>, peak rss +X MiB, heap +Y MiB`
 * (`sent`: what the peer wrote before the client stopped reading; a capped client stops early), then
 * asserts both figures are under the bound.
 */
export function report(surface: string, sent: number, m: Measured<unknown>): void {
  console.log(
    `hostile-input: ${surface}: ${(sent / MIB).toFixed(1)} MiB sent, ${outcomeOf(m)}, ` +
      `peak rss +${mib(m.rssMiB)}, heap +${mib(m.heapMiB)} (bound ${BOUND_MIB} MiB)`,
  );
  expect(m.rssMiB, `${surface}: peak RSS growth, MiB`).toBeLessThan(BOUND_MIB);
  expect(m.heapMiB, `${surface}: peak live-heap growth, MiB`).toBeLessThan(BOUND_MIB);
}

/**
 * Writes `total` bytes to `out` as `head`, then `block` repeated (the last one cut), then `tail`, as fast
 * as the reader takes them; stops when the reader hangs up. Resolves to the bytes written.
 */
export function pump(
  out: NodeJS.WritableStream & { destroyed?: boolean; once(e: string, f: () => void): unknown },
  block: Buffer,
  total: number,
  options: { head?: Buffer; tail?: Buffer; end?: boolean } = {},
): Promise<number> {
  const { head = Buffer.alloc(0), tail = Buffer.alloc(0), end = true } = options;
  return new Promise((resolve) => {
    let written = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve(written);
    };
    out.once("close", finish);
    out.once("error", finish);
    const write = (b: Buffer) => {
      written += b.length;
      return out.write(b);
    };
    if (head.length && !write(head)) return void out.once("drain", more);
    more();
    function more() {
      while (!out.destroyed && !done) {
        const left = total - written - tail.length;
        if (left <= 0) {
          if (tail.length) write(tail);
          if (end) out.end();
          return finish();
        }
        if (!write(left >= block.length ? block : block.subarray(0, left))) {
          out.once("drain", more);
          return;
        }
      }
      finish();
    }
  });
}
