// Property tests of the stream decoders: whatever bytes arrive, in whatever chunks, they end or throw a
// typed error, and well-formed input decodes to exactly what was sent. BERTH_FUZZ_RUNS sets the case count.
import { BerthError } from "@berth/runtime-core";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { demultiplex } from "../src/streams/demux.js";
import { ndjson } from "../src/streams/ndjson.js";
import { unpackTar } from "../src/tar.js";

const numRuns = Number(process.env.BERTH_FUZZ_RUNS ?? 500);
// Bounded by the case count, not the clock: large BERTH_FUZZ_RUNS need room.
vi.setConfig({ testTimeout: 600_000 });

function chunksOf(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    if (p > prev) out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

async function* from(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

async function settles(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(BerthError);
  }
}

describe("fuzz: demultiplex", () => {
  it("decodes any well-formed frame sequence split anywhere", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(1, 2), fc.uint8Array({ maxLength: 64 })), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        async (frames, cuts) => {
          const parts: Uint8Array[] = [];
          for (const [type, data] of frames) {
            const h = new Uint8Array(8);
            h[0] = type;
            new DataView(h.buffer).setUint32(4, data.length);
            parts.push(h, data);
          }
          const all = Buffer.concat(parts);
          const got = { 1: [] as number[], 2: [] as number[] };
          for await (const f of demultiplex(from(chunksOf(all, cuts)))) {
            got[f.stream === "stderr" ? 2 : 1].push(...f.data);
          }
          const want = { 1: [] as number[], 2: [] as number[] };
          for (const [type, data] of frames) want[type as 1 | 2].push(...data);
          expect(got).toEqual(want);
        },
      ),
      { numRuns },
    );
  });

  it("ends or throws a typed error on arbitrary bytes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 256 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (bytes, cuts) => {
          await settles(async () => {
            for await (const _ of demultiplex(from(chunksOf(bytes, cuts)))) {
              // consume
            }
          });
        },
      ),
      { numRuns },
    );
  });
});

describe("fuzz: ndjson", () => {
  it("round-trips any JSON objects split anywhere", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.dictionary(
            fc.string({ maxLength: 8 }).filter((k) => k !== "error" && k !== "errorDetail"),
            fc.jsonValue({ maxDepth: 2 }),
          ),
        ),
        fc.array(fc.nat(), { maxLength: 10 }),
        async (objects, cuts) => {
          const text = objects.map((o) => JSON.stringify(o)).join("\n");
          const bytes = new TextEncoder().encode(text);
          const got: unknown[] = [];
          for await (const v of ndjson(from(chunksOf(bytes, cuts)))) got.push(v);
          expect(got).toEqual(objects.map((o) => JSON.parse(JSON.stringify(o))));
        },
      ),
      { numRuns },
    );
  });

  it("ends or throws a typed error on arbitrary text", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (bytes) => {
        await settles(async () => {
          for await (const _ of ndjson(from([bytes]))) {
            // consume
          }
        });
      }),
      { numRuns },
    );
  });
});

describe("fuzz: tar reader", () => {
  it("ends or throws a typed error on arbitrary bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (bytes) => {
        await settles(async () => {
          for await (const _ of unpackTar(from([bytes]), { maxEntryBytes: 1 << 20 })) {
            // consume
          }
        });
      }),
      { numRuns },
    );
  });
});
