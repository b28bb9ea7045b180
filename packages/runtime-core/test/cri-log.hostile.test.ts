// A CRI log file is written by whoever controls the container (and the runtime): the reader must hold
// constant memory whatever the file holds. Figures print as `hostile-input:` lines for the reliability
// summary. BERTH_HOSTILE_LOG_MIB sets the size of the big files (default 256).
import { execFileSync } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, describe, expect, it } from "vitest";
import { ProtocolError } from "../src/index.js";
import { type CriLogEntry, formatCriLogRecords, readCriLogs } from "../src/internal.js";

const MIB = 1024 * 1024;
const SIZE_MIB = Number(process.env.BERTH_HOSTILE_LOG_MIB ?? 256);
const BOUND_MIB = 32;
const dir = mkdtempSync(join(tmpdir(), "berth-crilog-hostile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
/**
 * Live memory: the JS heap and the Buffers outside it, after a full collection and a turn of the event
 * loop (large strings and ArrayBuffers are freed just after a collection, not during it).
 */
async function live(): Promise<number> {
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Write `total` bytes made of `block` repeated (then cut), in big writes. */
async function writeRepeated(
  path: string,
  head: Buffer,
  block: Buffer,
  total: number,
  tail: Buffer = Buffer.alloc(0),
) {
  const out = createWriteStream(path);
  const write = (b: Buffer) =>
    out.write(b) ? Promise.resolve() : new Promise<void>((r) => out.once("drain", () => r()));
  await write(head);
  const big = Buffer.concat(
    Array.from({ length: Math.max(1, Math.floor((4 * MIB) / block.length)) }, () => block),
  );
  let left = total - head.length - tail.length;
  while (left > 0) {
    const piece = left >= big.length ? big : big.subarray(0, left);
    await write(piece);
    left -= piece.length;
  }
  await write(tail);
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

/**
 * Read the whole log, sampling live memory every 8 MiB of entry bytes (and once at the end); returns the
 * peak growth over the baseline in MiB and what was read. (RSS is not the measure: it keeps what the
 * allocator has not handed back, whoever used it.)
 */
async function measure(entries: AsyncIterable<CriLogEntry>) {
  const base = await live();
  let peak = 0;
  let bytes = 0;
  let count = 0;
  let nextSample = 8 * MIB;
  let partials = 0;
  for await (const e of entries) {
    bytes += e.data.length;
    count++;
    if (e.partial) partials++;
    if (bytes >= nextSample) {
      nextSample += 8 * MIB;
      peak = Math.max(peak, (await live()) - base);
    }
  }
  peak = Math.max(peak, (await live()) - base);
  return { growthMiB: peak / MIB, bytes, count, partials };
}

describe("hostile CRI log files", () => {
  const t = "2026-01-02T03:04:05.123456789Z";
  const lines = join(dir, "lines.log");

  it(`reads a ${SIZE_MIB} MiB log with live memory growth under ${BOUND_MIB} MiB`, {
    timeout: 300_000,
  }, async () => {
    // Ordinary output: lines of various lengths on both streams, some split into partials by the runtime.
    const short = Array.from({ length: 300 }, (_, i) => `line ${i} ${"x".repeat(i % 150)}\n`).join("");
    const block = Buffer.concat([
      formatCriLogRecords("stdout", Buffer.from(short), t),
      formatCriLogRecords("stderr", Buffer.from(`warning: ${"c".repeat(300)}\n`), t),
      formatCriLogRecords("stdout", Buffer.from(`${"d".repeat(20_000)}\n`), t),
    ]);
    await writeRepeated(lines, Buffer.alloc(0), block, SIZE_MIB * MIB);
    const r = await measure(readCriLogs(lines));
    console.log(
      `hostile-input: cri log ${SIZE_MIB} MiB read (${r.count} lines), heap +${Math.max(0, r.growthMiB).toFixed(1)} MiB`,
    );
    expect(r.count).toBeGreaterThan(SIZE_MIB * 4000);
    expect(r.growthMiB).toBeLessThan(BOUND_MIB);
  });

  it("tail reads the end of the file only: garbage before the last lines is never seen", {
    timeout: 300_000,
  }, async () => {
    // A head that is not CRI at all, then records: a reader that starts at the top throws on the first line.
    const garbage = join(dir, "garbage-head.log");
    const block = Buffer.from("this is not a CRI log line and never was\n".repeat(1000));
    const end = Buffer.concat([
      Buffer.from("\n"),
      formatCriLogRecords("stdout", Buffer.from("one\ntwo\nthree\n"), t),
    ]);
    await writeRepeated(garbage, Buffer.alloc(0), block, SIZE_MIB * MIB, end);
    const base = await live();
    const got: string[] = [];
    for await (const e of readCriLogs(garbage, { tail: 2 })) got.push(e.content);
    const growth = ((await live()) - base) / MIB;
    console.log(
      `hostile-input: cri log tail 2 of ${SIZE_MIB} MiB, heap +${Math.max(0, growth).toFixed(1)} MiB`,
    );
    expect(got).toEqual(["two", "three"]);
    expect(growth).toBeLessThan(BOUND_MIB);
  });

  it(`a single ${SIZE_MIB} MiB record comes out in pieces marked partial, in bounded memory`, {
    timeout: 300_000,
  }, async () => {
    const path = join(dir, "one-line.log");
    await writeRepeated(
      path,
      Buffer.from(`${t} stdout F `),
      Buffer.alloc(MIB, 0x78),
      SIZE_MIB * MIB,
      Buffer.from(`\n${t} stdout F after\n`),
    );
    const r = await measure(readCriLogs(path));
    console.log(
      `hostile-input: cri log one ${SIZE_MIB} MiB line read, heap +${Math.max(0, r.growthMiB).toFixed(1)} MiB`,
    );
    expect(r.growthMiB).toBeLessThan(BOUND_MIB);
    // Every byte of content, in pieces of at most the line cap; only the piece with the record's end is whole.
    const header = `${t} stdout F `.length;
    expect(r.bytes).toBe(SIZE_MIB * MIB - header - 1 - `${t} stdout F after\n`.length + "after".length);
    expect(r.partials).toBe(r.count - 2);
  });

  it("a record longer than maxLineBytes without a newline is cut into partial pieces, bytes intact", async () => {
    const path = join(dir, "long-record.log");
    const content = Buffer.from("0123456789".repeat(200_000));
    writeFileSync(
      path,
      Buffer.concat([Buffer.from(`${t} stderr P `), content, Buffer.from(`\n${t} stderr F !\n`)]),
    );
    const got: CriLogEntry[] = [];
    for await (const e of readCriLogs(path, { maxLineBytes: 1024 })) got.push(e);
    expect(got.length).toBeGreaterThan(4);
    // Each piece holds at most the cap and what was left of the chunk read (256 KiB).
    for (const e of got) expect(e.data.length).toBeLessThanOrEqual(1024 + 256 * 1024);
    expect(got.slice(0, -1).every((e) => e.partial && e.stream === "stderr")).toBe(true);
    expect(got.at(-1)?.partial).toBe(false);
    expect(Buffer.concat(got.map((e) => e.data)).toString()).toBe(`${content.toString()}!`);
  });

  it("a malformed line is a ProtocolError that does not quote the file", async () => {
    const path = join(dir, "secret.log");
    writeFileSync(path, "root:$6$secret-hash:19000:0:99999:7:::\n");
    const err = await (async () => {
      for await (const _ of readCriLogs(path)) {
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).not.toContain("secret");
    expect((err as Error).message).toContain("byte 0");
  });

  it("a path that is not a regular file (a FIFO) is refused at once, not read forever", async () => {
    const fifo = join(dir, "fifo.log");
    execFileSync("mkfifo", [fifo]);
    const err = await readCriLogs(fifo, { follow: true })
      .next()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
  });
});
