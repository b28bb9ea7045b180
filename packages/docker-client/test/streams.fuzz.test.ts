// Property tests of the stream decoders: whatever bytes arrive, in whatever chunks, they end or throw a
// typed error, and well-formed input decodes to exactly what was sent. BERTH_FUZZ_RUNS sets the case count;
// each property prints how many cases ran.
import { type BerthError, ProtocolError } from "@berth/runtime-core";
import fc from "fast-check";
import { describe, it } from "vitest";
import { chunksOf, fuzz, must, typedOnly } from "../../../test/support/fuzz-harness.js";
import { demultiplex } from "../src/streams/demux.js";
import { ndjson } from "../src/streams/ndjson.js";
import { unpackTar } from "../src/tar.js";

async function* from(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

async function drain(it: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const v of it) out.push(v);
  return out;
}

const cuts = fc.array(fc.nat(), { maxLength: 10 });
const STREAMS = ["stdin", "stdout", "stderr", "system"] as const;

function frame(type: number, data: Uint8Array): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}
const frames = fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 64 })), {
  maxLength: 20,
});

describe("fuzz: demultiplex", () => {
  it("decodes any well-formed frame sequence split anywhere", async () => {
    await fuzz("demux round trip", fc.tuple(frames, cuts), async ([fs, cs]) => {
      const all = Buffer.concat(fs.map(([t, d]) => frame(t, d)));
      const got: Record<string, number[]> = { stdin: [], stdout: [], stderr: [], system: [] };
      for await (const f of demultiplex(from(chunksOf(all, cs)))) got[f.stream]?.push(...f.data);
      const want: Record<string, number[]> = { stdin: [], stdout: [], stderr: [], system: [] };
      for (const [t, d] of fs) want[STREAMS[t] as string]?.push(...d);
      must(got).toEqual(want);
    });
  });

  it("a well-formed stream cut short fails with ProtocolError exactly when it ends inside a frame", async () => {
    await fuzz("demux truncated", fc.tuple(frames, fc.nat(), cuts), async ([fs, at, cs]) => {
      const parts = fs.map(([t, d]) => frame(t, d));
      const all = Buffer.concat(parts);
      const end = at % (all.length + 1);
      const boundaries = new Set([0]);
      let pos = 0;
      for (const p of parts) {
        pos += p.length;
        boundaries.add(pos);
      }
      const got = await typedOnly(() => drain(demultiplex(from(chunksOf(all.subarray(0, end), cs)))));
      if (boundaries.has(end)) must(got).not.toHaveProperty("error");
      else must("error" in got && got.error instanceof ProtocolError).toBe(true);
    });
  });

  it("ends or throws a typed error on arbitrary bytes", async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      // Valid frames with one byte changed: headers that are almost right.
      fc.tuple(frames, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([fs, at, b]) => {
        const all = Buffer.concat(fs.map(([t, d]) => frame(t, d)));
        if (all.length) all[at % all.length] = b;
        return all;
      }),
    );
    await fuzz("demux arbitrary bytes", fc.tuple(bytes, cuts), async ([b, cs]) => {
      await typedOnly(() => drain(demultiplex(from(chunksOf(b, cs)))));
    });
  });
});

/** Objects a daemon might send, never carrying the error keys (those are thrown, tested below). */
const progress = fc.dictionary(
  fc.string({ unit: "binary", maxLength: 8 }).filter((k) => k !== "error" && k !== "errorDetail"),
  fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ unit: "binary", maxLength: 16 })),
  { maxKeys: 4 },
);

describe("fuzz: ndjson", () => {
  it("round-trips any JSON objects (any Unicode) split anywhere, with blank and CRLF lines", async () => {
    await fuzz(
      "ndjson round trip",
      fc.tuple(fc.array(progress, { maxLength: 5 }), fc.constantFrom("\n", "\r\n", "\n\n", "\n \n"), cuts),
      async ([objects, sep, cs]) => {
        const text = objects.map((o) => JSON.stringify(o)).join(sep);
        const got = await drain(ndjson(from(chunksOf(new TextEncoder().encode(text), cs))));
        must(got).toEqual(objects.map((o) => JSON.parse(JSON.stringify(o))));
      },
    );
  });

  it("an error object inside the stream ends it with a typed error carrying the daemon's message", async () => {
    const message = fc.oneof(
      fc.constantFrom(
        "unauthorized: incorrect username or password",
        "manifest unknown",
        "context deadline exceeded",
        "no space left on device",
      ),
      fc.string({ maxLength: 30 }),
    );
    await fuzz(
      "ndjson error objects",
      fc.tuple(fc.array(progress, { maxLength: 2 }), message, fc.boolean(), cuts),
      async ([before, msg, detail, cs]) => {
        const err = detail ? { errorDetail: { message: msg }, error: msg } : { error: msg };
        const text = [...before, err, { status: "after" }].map((o) => JSON.stringify(o)).join("\n");
        const got = await typedOnly(() =>
          drain(ndjson(from(chunksOf(new TextEncoder().encode(text), cs)), "images.pull")),
        );
        if (msg === "" && !detail) {
          // An empty error with no detail is no error: the stream goes on.
          must(got).not.toHaveProperty("error");
          return;
        }
        must(got).toHaveProperty("error");
        const e = (got as { error: BerthError }).error;
        must(e.daemonMessage).toBe(msg);
        must(e.operation).toBe("images.pull");
      },
    );
  });

  it("ends or throws a typed error on arbitrary bytes", async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc
        .array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 6 })
        .map((vs) => new TextEncoder().encode(vs.map((v) => JSON.stringify(v)).join("\n"))),
      fc
        .string({ unit: fc.constantFrom(...'{}[]":,\n \\0a-eE'), maxLength: 80 })
        .map((s) => new TextEncoder().encode(s)),
    );
    await fuzz("ndjson arbitrary bytes", fc.tuple(bytes, cuts), async ([b, cs]) => {
      await typedOnly(() => drain(ndjson(from(chunksOf(b, cs)))));
    });
  });
});

describe("fuzz: tar reader", () => {
  it("ends or throws a typed error on arbitrary bytes", async () => {
    await fuzz("tar reader arbitrary bytes", fc.uint8Array({ maxLength: 2048 }), async (bytes) => {
      await typedOnly(async () => {
        for await (const _ of unpackTar(from([bytes]), { maxEntryBytes: 1 << 20 })) {
          // consume
        }
      });
    });
  });
});
