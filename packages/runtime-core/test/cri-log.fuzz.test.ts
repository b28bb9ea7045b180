// Property tests of the CRI log reader: any line parses or is a ProtocolError, any byte stream in any
// chunks decodes or fails typed (never in lenient mode), and what formatCriLogRecords writes decodes back
// to exactly the bytes written, per stream, however the file is cut. BERTH_FUZZ_RUNS sets the case count.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, it } from "vitest";
import { chunksOf, expectTyped, FUZZ_RUNS, fuzz, fuzzDir, must } from "../../../test/support/fuzz-harness.js";
import { ProtocolError } from "../src/index.js";
import {
  CriLogDecoder,
  type CriLogEntry,
  formatCriLogRecords,
  type LogStream,
  parseCriLogRecord,
  readCriLogs,
} from "../src/internal.js";

const stream = fc.constantFrom<LogStream>("stdout", "stderr");
const date = fc.date({ noInvalidDate: true });

/** Lines that are close to records: a real-looking prefix, then noise. */
const nearRecord = fc
  .tuple(
    fc.oneof(
      date.map((d) => d.toISOString()),
      fc.constantFrom("2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05+01:00", "", "x", "0"),
      fc.string({ maxLength: 40 }),
    ),
    fc.oneof(stream, fc.string({ maxLength: 8 })),
    fc.oneof(fc.constantFrom("F", "P", "P:F", "", "F:", "X"), fc.string({ maxLength: 6 })),
    fc.uint8Array({ maxLength: 64 }),
    fc.constantFrom(" ", "  ", "\t"),
  )
  .map(([ts, s, tags, content, sep]) =>
    Buffer.concat([Buffer.from(`${ts}${sep}${s}${sep}${tags}${sep}`, "utf8"), content]),
  );

const anyLine = fc.oneof(
  nearRecord,
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  fc.string({ unit: "binary", maxLength: 100 }).map((s) => Buffer.from(s, "utf8")),
);

function checkRecordShape(r: ReturnType<typeof parseCriLogRecord>): void {
  must(r.stream === "stdout" || r.stream === "stderr").toBe(true);
  must(Number.isNaN(r.time.getTime())).toBe(false);
  must(Buffer.isBuffer(r.content)).toBe(true);
}

describe("fuzz: CRI log records", () => {
  it("parseCriLogRecord returns a record or throws ProtocolError, for any line", async () => {
    await fuzz(
      "cri-log parseCriLogRecord",
      fc.oneof(
        anyLine,
        anyLine.map((b) => b.toString("latin1")),
      ),
      (line) => {
        let record: ReturnType<typeof parseCriLogRecord>;
        try {
          record = parseCriLogRecord(line);
        } catch (err) {
          expectTyped(err);
          must(err).toBeInstanceOf(ProtocolError);
          // The message quotes at most the line's start, so a huge line cannot make a huge error.
          must(err.message.length).toBeLessThan(1200);
          return;
        }
        checkRecordShape(record);
      },
    );
  });

  it("the decoder, fed arbitrary bytes in arbitrary chunks, decodes or throws ProtocolError", async () => {
    const lines = fc
      .array(anyLine, { maxLength: 12 })
      .map((ls) => Buffer.concat(ls.flatMap((l) => [l, Buffer.from("\n")])));
    await fuzz(
      "cri-log CriLogDecoder (arbitrary bytes)",
      fc.tuple(
        fc.oneof(lines, fc.uint8Array({ maxLength: 600 })),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.boolean(),
      ),
      ([bytes, cuts, lenient]) => {
        const decoder = new CriLogDecoder({ lenient, maxLineBytes: 64 });
        const out: CriLogEntry[] = [];
        try {
          for (const chunk of chunksOf(bytes, cuts)) out.push(...decoder.push(chunk));
          out.push(...decoder.end());
        } catch (err) {
          expectTyped(err);
          must(err).toBeInstanceOf(ProtocolError);
          must(lenient).toBe(false);
          return;
        }
        for (const e of out) {
          must(e.data.length).toBeLessThanOrEqual(bytes.length);
          must(e.content).toBe(e.data.toString("utf8"));
        }
      },
    );
  });
});

/** One write of a container's output: which stream, the bytes, and when. */
const write = fc.record({
  stream,
  data: fc.oneof(
    fc.uint8Array({ maxLength: 32 }),
    fc
      .array(fc.constantFrom("a", "b", "\n", "é", "\u{1F600}", "\r", " ", "\0"), { maxLength: 30 })
      .map((cs) => new Uint8Array(Buffer.from(cs.join(""), "utf8"))),
  ),
  time: date,
});

describe("fuzz: CRI log round trip", () => {
  it("formatCriLogRecords → CriLogDecoder gives back every byte of every stream, cut anywhere", async () => {
    await fuzz(
      "cri-log format→decode round trip",
      fc.tuple(
        fc.array(write, { maxLength: 8 }),
        fc.integer({ min: 1, max: 24 }),
        fc.array(fc.nat(), { maxLength: 10 }),
      ),
      ([writes, maxRecord, cuts]) => {
        const file = Buffer.concat(
          writes.map((w) => formatCriLogRecords(w.stream, w.data, w.time, maxRecord)),
        );
        const decoder = new CriLogDecoder();
        const entries: CriLogEntry[] = [];
        for (const chunk of chunksOf(file, cuts)) entries.push(...decoder.push(chunk));
        entries.push(...decoder.end());

        const times = new Set(writes.map((w) => w.time.toISOString()));
        for (const s of ["stdout", "stderr"] as const) {
          const want = Buffer.concat(writes.filter((w) => w.stream === s).map((w) => w.data));
          const mine = entries.filter((e) => e.stream === s);
          // Whole lines end in the newline the decoder removed; only the last may be left open.
          const got = Buffer.concat(
            mine.flatMap((e) => (e.partial ? [e.data] : [e.data, Buffer.from("\n")])),
          );
          must(got.equals(want)).toBe(true);
          mine.forEach((e, i) => {
            if (e.partial) must(i).toBe(mine.length - 1);
            must(times.has(e.timestamp)).toBe(true);
            must(e.time.toISOString()).toBe(e.timestamp);
            must(e.content).toBe(e.data.toString("utf8"));
          });
        }
      },
    );
  });
});

describe("fuzz: CRI log tail", () => {
  const dir = fuzzDir("crilog-tail");
  let n = 0;
  const collect = async (path: string, options: Parameters<typeof readCriLogs>[1]) => {
    const out: Array<[string, string, boolean, string]> = [];
    for await (const e of readCriLogs(path, options)) out.push([e.stream, e.content, e.partial, e.timestamp]);
    return out;
  };

  it("tail, read backwards from the end, gives the last lines a read from the top gives", async () => {
    await fuzz(
      "cri-log tail (backwards) = last lines of a full read",
      fc.tuple(
        fc.array(write, { maxLength: 12 }),
        fc.integer({ min: 1, max: 8 }),
        fc.nat({ max: 12 }),
        fc.option(fc.constantFrom<LogStream[]>(["stdout"], ["stderr"]), { nil: undefined }),
        fc.option(date, { nil: undefined }),
        fc.boolean(),
      ),
      async ([writes, maxRecord, tail, streams, since, follow]) => {
        const path = join(dir, `t${n++}.log`);
        writeFileSync(
          path,
          Buffer.concat(writes.map((w) => formatCriLogRecords(w.stream, w.data, w.time, maxRecord))),
        );
        const filters = { ...(streams ? { streams } : {}), ...(since ? { since } : {}) };
        const all = await collect(path, filters);
        if (!follow) {
          must(await collect(path, { ...filters, tail })).toEqual(tail === 0 ? [] : all.slice(-tail));
          return;
        }
        // Following, the tail is of the finished lines; lines left open come when the follow ends.
        let open = 0;
        while (open < all.length && all[all.length - 1 - open]?.[2]) open++;
        const finished = all.slice(0, all.length - open);
        const want = [...(tail === 0 ? [] : finished.slice(-tail)), ...all.slice(all.length - open)];
        must(await collect(path, { ...filters, tail, follow: true, until: () => true })).toEqual(want);
      },
      // Each case writes and reads a file: a few thousand cover the shapes.
      Math.min(FUZZ_RUNS, 3000),
    );
  });
});
