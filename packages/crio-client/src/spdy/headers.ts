// SPDY/3 name/value header blocks (draft section 2.6.10): a 32-bit pair count, then per pair a 32-bit
// name length, the lowercase name, a 32-bit value length and the value, several values of one name joined
// by NUL. Each direction of a session compresses all its blocks as ONE zlib stream, primed with the
// SPDY/3 dictionary and sync-flushed after every block, so the compressor and decompressor live as long as
// the session and must see blocks in frame order.
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from "node:zlib";
import { ProtocolError } from "@berth/runtime-core";
import { SPDY3_DICTIONARY } from "./dictionary.js";

/** Header names to their values, in order. Names are lowercase on the wire. */
export type SpdyHeaders = Record<string, string[]>;

/** What callers may pass: a value or several per name. */
export type SpdyHeadersInit = Record<string, string | readonly string[]>;

/** Headers a decoded block may carry at most; guards against a decompression bomb. */
export const MAX_HEADER_BLOCK_BYTES = 256 * 1024;

export function encodeHeaderBlock(headers: SpdyHeadersInit): Buffer {
  const merged = new Map<string, string[]>();
  for (const [rawName, rawValue] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (!name) throw new RangeError("SPDY header names cannot be empty");
    const values = typeof rawValue === "string" ? [rawValue] : [...rawValue];
    for (const v of values)
      if (v.includes("\0")) throw new RangeError(`SPDY header ${name} has a NUL in its value`);
    // One entry per name: the draft makes duplicate names a protocol error.
    merged.set(name, [...(merged.get(name) ?? []), ...values]);
  }
  const parts: Buffer[] = [u32(merged.size)];
  for (const [name, values] of merged) {
    const n = Buffer.from(name, "utf8");
    const v = Buffer.from(values.join("\0"), "utf8");
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  let offset = 0;
  const read32 = (what: string) => {
    if (offset + 4 > block.length) throw new ProtocolError(`SPDY header block truncated in ${what}`);
    const v = block.readUInt32BE(offset);
    offset += 4;
    return v;
  };
  const readBytes = (n: number, what: string) => {
    if (offset + n > block.length) throw new ProtocolError(`SPDY header block truncated in ${what}`);
    const v = block.subarray(offset, offset + n);
    offset += n;
    return v;
  };
  const count = read32("the pair count");
  // Each pair takes at least 8 bytes: a count beyond that is a lie, not a reason to allocate.
  if (count > (block.length - 4) / 8) throw new ProtocolError(`SPDY header block announces ${count} pairs`);
  const headers: SpdyHeaders = Object.create(null);
  for (let i = 0; i < count; i++) {
    const name = readBytes(read32("a name length"), "a name").toString("utf8");
    const value = readBytes(read32("a value length"), "a value").toString("utf8");
    if (!name) throw new ProtocolError("SPDY header block has an empty name");
    if (name !== name.toLowerCase()) throw new ProtocolError(`SPDY header name ${name} is not lowercase`);
    if (Object.hasOwn(headers, name)) throw new ProtocolError(`SPDY header ${name} appears twice`);
    headers[name] = value.split("\0");
  }
  if (offset !== block.length)
    throw new ProtocolError(`SPDY header block has ${block.length - offset} bytes after its last pair`);
  return headers;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

/**
 * Runs one zlib stream (deflate or inflate) block by block: each `run` writes a block, sync-flushes, and
 * resolves with exactly the bytes that block produced. Blocks are processed one at a time, in call order.
 */
class ZlibBlocks {
  readonly #z: Deflate | Inflate;
  readonly #limit: number;
  #queue: Promise<unknown> = Promise.resolve();
  #chunks: Buffer[] = [];
  #size = 0;
  #failure: Error | undefined;
  #onFailure: ((err: Error) => void) | undefined;

  constructor(z: Deflate | Inflate, limit: number) {
    this.#z = z;
    this.#limit = limit;
    z.on("data", (c: Buffer) => {
      this.#chunks.push(c);
      this.#size += c.length;
      if (this.#size > this.#limit)
        this.#fail(new ProtocolError(`SPDY header block over ${this.#limit} bytes`));
    });
    z.on("error", (err: Error) => this.#fail(err));
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#onFailure?.(err);
    this.#z.destroy();
  }

  run(input: Buffer): Promise<Buffer> {
    const next = this.#queue.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          if (this.#failure) return reject(this.#failure);
          this.#chunks = [];
          this.#size = 0;
          this.#onFailure = reject;
          this.#z.write(input);
          this.#z.flush(constants.Z_SYNC_FLUSH, () => {
            this.#onFailure = undefined;
            if (this.#failure) return reject(this.#failure);
            // Output is pushed before the flush completes. Should any still sit in the readable buffer,
            // read() hands it to the 'data' listener above (a flowing stream emits what read() returns).
            while (this.#z.read() !== null);
            resolve(Buffer.concat(this.#chunks, this.#size));
          });
        }),
    );
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Fail the block in progress and every later one. */
  close(): void {
    this.#fail(new Error("header compression stream closed"));
  }
}

/** Compresses one direction's header blocks. */
export class HeaderCompressor {
  readonly #blocks: ZlibBlocks;

  constructor() {
    this.#blocks = new ZlibBlocks(createDeflate({ dictionary: SPDY3_DICTIONARY }), Number.POSITIVE_INFINITY);
  }

  /** The compressed block for `headers`; call in the order the frames will be sent. */
  compress(headers: SpdyHeadersInit): Promise<Buffer> {
    return this.#blocks.run(encodeHeaderBlock(headers));
  }

  close(): void {
    this.#blocks.close();
  }
}

/** Decompresses the peer's header blocks. A failure is permanent: the zlib stream is out of step. */
export class HeaderDecompressor {
  readonly #blocks: ZlibBlocks;

  constructor(maxBlockBytes = MAX_HEADER_BLOCK_BYTES) {
    this.#blocks = new ZlibBlocks(createInflate({ dictionary: SPDY3_DICTIONARY }), maxBlockBytes);
  }

  /** Headers from one compressed block; call in the order the frames arrived. */
  async decompress(block: Buffer): Promise<SpdyHeaders> {
    let raw: Buffer;
    try {
      raw = await this.#blocks.run(block);
    } catch (cause) {
      if (cause instanceof ProtocolError) throw cause;
      throw new ProtocolError(`SPDY header block does not decompress: ${(cause as Error).message}`, {
        cause,
      });
    }
    return decodeHeaderBlock(raw);
  }

  close(): void {
    this.#blocks.close();
  }
}
