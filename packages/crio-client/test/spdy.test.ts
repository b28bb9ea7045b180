// SPDY/3 framing and header compression: every frame type round-trips, the parser copes with any
// chunking, malformed input is a ProtocolError, and header blocks share one zlib stream per direction
// primed with the SPDY/3 dictionary.
import { constants, deflateSync, inflateSync } from "node:zlib";
import { ProtocolError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { SPDY3_DICTIONARY } from "../src/spdy/dictionary.js";
import {
  decodeFrame,
  encodeData,
  encodeGoAway,
  encodeHeaders,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSynReply,
  encodeSynStream,
  encodeWindowUpdate,
  type Frame,
  FrameParser,
  GoAwayStatus,
  RstStatus,
  SettingsId,
} from "../src/spdy/frames.js";
import {
  decodeHeaderBlock,
  encodeHeaderBlock,
  HeaderCompressor,
  HeaderDecompressor,
} from "../src/spdy/headers.js";

const block = Buffer.from("compressed-header-block");

/** Every frame type, encoded, with what decoding must give back. */
const samples: Array<[Buffer, Frame]> = [
  [
    encodeData(1, Buffer.from("hello")),
    { type: "data", streamId: 1, fin: false, data: Buffer.from("hello") },
  ],
  [
    encodeData(0x7fff_ffff, Buffer.alloc(0), true),
    { type: "data", streamId: 0x7fff_ffff, fin: true, data: Buffer.alloc(0) },
  ],
  [
    encodeSynStream({
      streamId: 3,
      associatedId: 1,
      priority: 5,
      slot: 2,
      fin: true,
      unidirectional: true,
      headerBlock: block,
    }),
    {
      type: "syn_stream",
      streamId: 3,
      associatedId: 1,
      priority: 5,
      slot: 2,
      fin: true,
      unidirectional: true,
      headerBlock: block,
    },
  ],
  [encodeSynReply(5, block, true), { type: "syn_reply", streamId: 5, fin: true, headerBlock: block }],
  [encodeHeaders(7, block), { type: "headers", streamId: 7, fin: false, headerBlock: block }],
  [encodeRstStream(9, RstStatus.CANCEL), { type: "rst_stream", streamId: 9, status: RstStatus.CANCEL }],
  [
    encodeSettings(
      [
        { id: SettingsId.INITIAL_WINDOW_SIZE, flags: 1, value: 1 << 20 },
        { id: SettingsId.MAX_CONCURRENT_STREAMS, flags: 0, value: 100 },
      ],
      true,
    ),
    {
      type: "settings",
      clear: true,
      entries: [
        { id: SettingsId.INITIAL_WINDOW_SIZE, flags: 1, value: 1 << 20 },
        { id: SettingsId.MAX_CONCURRENT_STREAMS, flags: 0, value: 100 },
      ],
    },
  ],
  [encodePing(0xffff_fffe), { type: "ping", id: 0xffff_fffe }],
  [encodeGoAway(11, GoAwayStatus.INTERNAL_ERROR), { type: "goaway", lastGoodStreamId: 11, status: 2 }],
  [encodeWindowUpdate(0, 12345), { type: "window_update", streamId: 0, delta: 12345 }],
  [encodeWindowUpdate(13, 0x7fff_ffff), { type: "window_update", streamId: 13, delta: 0x7fff_ffff }],
];

describe("SPDY/3 frames", () => {
  it("every frame type round-trips", () => {
    for (const [bytes, frame] of samples) expect(decodeFrame(bytes)).toEqual(frame);
  });

  it("lays out the control frame header as the draft says", () => {
    const f = encodeSynStream({ streamId: 1, priority: 0, headerBlock: block });
    // C=1, version 3, type 1; flags 0; length 10 + block.
    expect(f.subarray(0, 8).toString("hex")).toBe(
      `80030001000000${(10 + block.length).toString(16).padStart(2, "0")}`,
    );
    const d = encodeData(5, Buffer.from("ab"), true);
    expect(d.toString("hex")).toBe("00000005010000026162");
    expect(encodeRstStream(1, RstStatus.CANCEL).toString("hex")).toBe("80030003000000080000000100000005");
    expect(encodeWindowUpdate(1, 65536).toString("hex")).toBe("80030009000000080000000100010000");
  });

  it("parses any chunking: one byte at a time, random cuts, everything at once", () => {
    const all = Buffer.concat(samples.map(([b]) => b));
    const want = samples.map(([, f]) => f);

    const whole = new FrameParser().push(all);
    expect(whole).toEqual(want);

    const bytewise = new FrameParser();
    const got: Frame[] = [];
    for (const byte of all) got.push(...bytewise.push(Uint8Array.of(byte)));
    expect(got).toEqual(want);
    expect(bytewise.pending).toBe(0);

    for (let seed = 1; seed <= 20; seed++) {
      const parser = new FrameParser();
      const frames: Frame[] = [];
      let rnd = seed;
      for (let at = 0; at < all.length; ) {
        rnd = (rnd * 1103515245 + 12345) % 2 ** 31;
        const n = 1 + (rnd % 23);
        frames.push(...parser.push(all.subarray(at, at + n)));
        at += n;
      }
      expect(frames).toEqual(want);
    }
  });

  it("carries a large data frame split across many chunks", () => {
    const payload = Buffer.alloc(200_000, 7);
    const bytes = encodeData(3, payload, true);
    const parser = new FrameParser();
    const frames: Frame[] = [];
    for (let at = 0; at < bytes.length; at += 1000)
      frames.push(...parser.push(bytes.subarray(at, at + 1000)));
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ type: "data", streamId: 3, fin: true });
    expect((frames[0] as { data: Buffer }).data.equals(payload)).toBe(true);
  });

  it("keeps unknown control frames (to be ignored) and refuses other versions", () => {
    const unknown = Buffer.from("8003000a00000003abcdef", "hex");
    expect(decodeFrame(unknown)).toEqual({
      type: "unknown",
      controlType: 10,
      flags: 0,
      payload: Buffer.from("abcdef", "hex"),
    });
    const v2 = Buffer.from("800200010000000a00000001000000000000", "hex");
    expect(() => decodeFrame(v2)).toThrow(ProtocolError);
  });

  it("malformed frames are ProtocolErrors", () => {
    // RST_STREAM with 4 of its 8 bytes.
    expect(() => decodeFrame(Buffer.from("800300030000000400000001", "hex"))).toThrow(ProtocolError);
    // SETTINGS announcing 2 entries, carrying 1.
    expect(() => decodeFrame(Buffer.from("800300040000000c000000020000000700000001", "hex"))).toThrow(
      ProtocolError,
    );
    // Data on stream 0.
    expect(() => decodeFrame(Buffer.from("0000000000000000", "hex"))).toThrow(ProtocolError);
    // A length over the parser's limit fails before the payload arrives.
    expect(() => new FrameParser(1024).push(Buffer.from("0000000100100000", "hex"))).toThrow(ProtocolError);
  });

  it("refuses to encode what the wire cannot carry", () => {
    expect(() => encodeData(0, Buffer.alloc(1))).toThrow(RangeError);
    expect(() => encodeSynStream({ streamId: 1, priority: 8, headerBlock: block })).toThrow(RangeError);
    expect(() => encodeWindowUpdate(1, 0)).toThrow(RangeError);
  });
});

describe("SPDY/3 dictionary", () => {
  it("is the draft's 1423 bytes: its Adler-32 is the DICTID peers check", () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(SPDY3_DICTIONARY.subarray(0, 11).toString("latin1")).toBe("\0\0\0\x07options");
    expect(SPDY3_DICTIONARY.subarray(-6).toString("latin1")).toBe("enq=0.");
    // zlib header: CMF 0x78, FLG with FDICT, then the dictionary's Adler-32.
    const z = deflateSync(Buffer.from("x"), { dictionary: SPDY3_DICTIONARY });
    expect(z[1] && z[1] & 0x20).toBe(0x20);
    expect(z.subarray(2, 6).toString("hex")).toBe("e3c6a7c2");
  });
});

describe("SPDY/3 header blocks", () => {
  it("encodes pairs with 32-bit lengths, lowercase names and NUL-joined values", () => {
    const raw = encodeHeaderBlock({ StreamType: "stdin", "x-multi": ["a", "b"] });
    expect(raw.toString("hex")).toBe(
      [
        "00000002",
        "0000000a",
        Buffer.from("streamtype").toString("hex"),
        "00000005",
        Buffer.from("stdin").toString("hex"),
        "00000007",
        Buffer.from("x-multi").toString("hex"),
        "00000003",
        "610062",
      ].join(""),
    );
    expect(decodeHeaderBlock(raw)).toEqual({ streamtype: ["stdin"], "x-multi": ["a", "b"] });
    // Names differing only in case merge into one pair.
    expect(decodeHeaderBlock(encodeHeaderBlock({ Port: "1", port: "2" }))).toEqual({ port: ["1", "2"] });
    expect(decodeHeaderBlock(encodeHeaderBlock({}))).toEqual({});
  });

  it("rejects malformed blocks", () => {
    const good = encodeHeaderBlock({ a: "b" });
    expect(() => decodeHeaderBlock(good.subarray(0, good.length - 1))).toThrow(ProtocolError);
    expect(() => decodeHeaderBlock(Buffer.concat([good, Buffer.of(0)]))).toThrow(ProtocolError);
    const upper = Buffer.from(good);
    upper[8] = "A".charCodeAt(0);
    expect(() => decodeHeaderBlock(upper)).toThrow(/lowercase/);
    const dup = Buffer.concat([Buffer.from("00000002", "hex"), good.subarray(4), good.subarray(4)]);
    expect(() => decodeHeaderBlock(dup)).toThrow(/twice/);
    expect(() => decodeHeaderBlock(Buffer.from("7fffffff", "hex"))).toThrow(ProtocolError);
    expect(() => encodeHeaderBlock({ "": "x" })).toThrow(RangeError);
  });

  it("one zlib stream per direction: blocks round-trip in order and decode as one stream", async () => {
    const compressor = new HeaderCompressor();
    const decompressor = new HeaderDecompressor();
    const sent = Array.from({ length: 40 }, (_, i) => ({
      streamtype: ["error", "stdin", "stdout", "stderr", "resize"][i % 5] as string,
      port: String(8000 + i),
      requestid: String(i),
      ...(i % 13 === 0 ? { big: "y".repeat(30_000 + i) } : {}),
    }));
    // Started together: the compressor orders them itself.
    const blocks = await Promise.all(sent.map((h) => compressor.compress(h)));
    // Repetition compresses: later blocks reuse earlier ones and the dictionary.
    expect((blocks[20] as Buffer).length).toBeLessThan(
      encodeHeaderBlock(sent[20] as Record<string, string>).length,
    );
    const got = await Promise.all(blocks.map((b) => decompressor.decompress(b)));
    expect(got).toEqual(sent.map((h) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, [v]]))));
    // An independent inflater sees one valid stream, sync-flushed after every block.
    const whole = inflateSync(Buffer.concat(blocks), {
      dictionary: SPDY3_DICTIONARY,
      finishFlush: constants.Z_SYNC_FLUSH,
    });
    expect(whole.equals(Buffer.concat(sent.map((h) => encodeHeaderBlock(h))))).toBe(true);
    for (const b of blocks) expect(b.subarray(-4).toString("hex")).toBe("0000ffff");
    compressor.close();
    decompressor.close();
  });

  it("a block compressed with another dictionary, or garbage, is a ProtocolError that sticks", async () => {
    const wrong = deflateSync(encodeHeaderBlock({ a: "b" }), {
      dictionary: Buffer.from("not the spdy dictionary"),
    });
    const d = new HeaderDecompressor();
    await expect(d.decompress(wrong)).rejects.toBeInstanceOf(ProtocolError);
    await expect(d.decompress(Buffer.from("x"))).rejects.toBeInstanceOf(ProtocolError);

    const g = new HeaderDecompressor();
    await expect(g.decompress(Buffer.from("definitely not zlib"))).rejects.toThrow(/does not decompress/);
  });

  it("caps a decompressed block's size", async () => {
    const c = new HeaderCompressor();
    const d = new HeaderDecompressor(10_000);
    const bomb = await c.compress({ x: "z".repeat(100_000) });
    expect(bomb.length).toBeLessThan(2_000);
    await expect(d.decompress(bomb)).rejects.toThrow(/over 10000 bytes/);
    c.close();
  });
});
