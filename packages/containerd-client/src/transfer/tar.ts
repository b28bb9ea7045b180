// A minimal streaming tar reader and writer for image archives. Entry bodies are streamed both ways, so a
// multi-gigabyte layer never sits in memory. (docker-client has a tar module, but it buffers each entry
// and client packages must not depend on each other; this one only knows what image archives need. The
// header writer and PAX records both use are runtime-core's kit/tar.ts.)
import { ValidationError } from "@berth/runtime-core";
import { parsePax, TAR_BLOCK, tarEntryHeader, tarPadding } from "@berth/runtime-core/internal";

const decoder = new TextDecoder();

function invalid(message: string, cause?: unknown): ValidationError {
  return new ValidationError(`tar archive: ${message}`, {
    operation: "tar.read",
    ...(cause === undefined ? {} : { cause }),
  });
}

// ---- reading ------------------------------------------------------------------------------------------

export type TarEntryType = "file" | "directory" | "symlink" | "hardlink" | "other";

export interface TarEntry {
  /** Path inside the archive, without a leading "./" or "/". */
  name: string;
  type: TarEntryType;
  size: number;
  mode: number;
  linkName: string;
  /** The entry's bytes. Read it before asking for the next entry; what is left unread is skipped. */
  body: AsyncIterable<Uint8Array>;
}

/** Pulls exact byte counts out of a chunked stream, keeping at most one partial chunk. */
class ByteSource {
  readonly #iterator: AsyncIterator<Uint8Array>;
  #pending: Uint8Array = new Uint8Array(0);
  #ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    while (this.#pending.byteLength === 0) {
      if (this.#ended) return false;
      const next = await this.#iterator.next();
      if (next.done) {
        this.#ended = true;
        return false;
      }
      this.#pending = next.value;
    }
    return true;
  }

  /** Exactly n bytes, or fewer when the stream ends first. */
  async read(n: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < n && (await this.#fill())) {
      const take = this.#pending.subarray(0, n - got);
      this.#pending = this.#pending.subarray(take.byteLength);
      parts.push(take);
      got += take.byteLength;
    }
    return parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts, got);
  }

  /** Up to `max` bytes as they arrive; an empty array at the end of the stream. */
  async chunk(max: number): Promise<Uint8Array> {
    if (!(await this.#fill())) return new Uint8Array(0);
    const take = this.#pending.subarray(0, max);
    this.#pending = this.#pending.subarray(take.byteLength);
    return take;
  }

  async close(): Promise<void> {
    await this.#iterator.return?.();
  }
}

function readString(block: Uint8Array, offset: number, width: number): string {
  const slice = block.subarray(offset, offset + width);
  const end = slice.indexOf(0);
  return decoder.decode(end === -1 ? slice : slice.subarray(0, end));
}

function readNumber(block: Uint8Array, offset: number, width: number): number {
  const first = block[offset] ?? 0;
  if (first & 0x80) {
    // GNU base-256: big-endian binary in the remaining bytes (sizes of 8 GiB and more).
    let n = first & 0x3f;
    for (let i = 1; i < width; i++) n = n * 256 + (block[offset + i] ?? 0);
    return n;
  }
  const text = readString(block, offset, width).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw invalid(`bad number field "${text}"`);
  return Number.parseInt(text, 8);
}

function checksumOk(block: Uint8Array): boolean {
  const stored = readNumber(block, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** "./a//b/" → "a/b"; keeps names comparable with the paths an archive's manifest names. */
export function cleanName(name: string): string {
  const parts: string[] = [];
  for (const p of name.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return parts.join("/");
}

const TYPES: Readonly<Record<string, TarEntryType>> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "5": "directory",
};

/** Read a tar stream entry by entry; metadata entries (PAX, GNU long names) are applied, not returned. */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const src = new ByteSource(source);
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  // Bytes to skip before the next header: the unread rest of the previous body and its padding.
  let skip = 0;
  const readBody = async (size: number): Promise<Uint8Array> => {
    const data = await src.read(size + ((TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK));
    if (data.byteLength < size) throw invalid("truncated inside an entry");
    return data.subarray(0, size);
  };
  try {
    for (;;) {
      while (skip > 0) {
        const c = await src.chunk(Math.min(skip, 1 << 20));
        if (c.byteLength === 0) throw invalid("truncated inside an entry");
        skip -= c.byteLength;
      }
      const block = await src.read(TAR_BLOCK);
      if (block.byteLength === 0) return; // no end-of-archive blocks: tolerated, as GNU tar does
      if (block.byteLength < TAR_BLOCK) throw invalid("truncated header");
      if (block.every((b) => b === 0)) {
        // Read the source to its end (record padding), so a producer finishes, and cleans up, normally.
        while ((await src.chunk(1 << 20)).byteLength > 0);
        return;
      }
      if (!checksumOk(block)) throw invalid("bad header checksum (not a tar archive?)");
      const typeflag = String.fromCharCode(block[156] ?? 0);
      let size = readNumber(block, 124, 12);
      if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
        if (size > 1 << 20) throw invalid(`metadata entry of ${size} bytes`);
        const data = await readBody(size);
        if (typeflag === "x") {
          const parsed = parsePax(data);
          if (!parsed.complete) throw invalid("malformed PAX header");
          pax = parsed.records;
        } else if (typeflag === "L") longName = decoder.decode(data).replace(/\0+$/, "");
        else if (typeflag === "K") longLink = decoder.decode(data).replace(/\0+$/, "");
        continue;
      }
      if (pax.size !== undefined) {
        size = Number(pax.size);
        if (!Number.isSafeInteger(size) || size < 0) throw invalid(`bad PAX size "${pax.size}"`);
      }
      const ustar = readString(block, 257, 6) === "ustar";
      const prefix = ustar && block[262] === 0 ? readString(block, 345, 155) : "";
      const base = readString(block, 0, 100);
      const name = cleanName(pax.path ?? longName ?? (prefix ? `${prefix}/${base}` : base));
      const linkName = pax.linkpath ?? longLink ?? readString(block, 157, 100);
      const type = TYPES[typeflag] ?? "other";
      pax = {};
      longName = undefined;
      longLink = undefined;
      // Links and directories carry no body, whatever their size field says.
      const bodySize = type === "file" || type === "other" ? size : 0;
      let remaining = bodySize;
      let open = true;
      const body: AsyncIterable<Uint8Array> = {
        async *[Symbol.asyncIterator]() {
          while (remaining > 0) {
            if (!open) throw invalid(`entry ${name} read after the next entry was asked for`);
            const c = await src.chunk(Math.min(remaining, 1 << 20));
            if (c.byteLength === 0) throw invalid(`truncated inside ${name}`);
            remaining -= c.byteLength;
            yield c;
          }
        },
      };
      yield { name, type, size: bodySize, mode: readNumber(block, 100, 8), linkName, body };
      open = false;
      skip = remaining + ((TAR_BLOCK - (bodySize % TAR_BLOCK)) % TAR_BLOCK);
    }
  } finally {
    await src.close();
  }
}

// ---- writing ------------------------------------------------------------------------------------------

export interface TarWriteEntry {
  name: string;
  type?: "file" | "directory";
  /** Required for files whose data is a stream. */
  size?: number;
  /** Bytes, or a function that opens the bytes as a stream (called when the entry is written). */
  data?: Uint8Array | (() => AsyncIterable<Uint8Array>);
  mode?: number;
}

function invalidWrite(message: string): ValidationError {
  return new ValidationError(`tar archive: ${message}`, { operation: "tar.write" });
}

/** Write entries as a tar stream, pulling each entry's data only when it is written. */
export async function* writeTar(
  entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>,
): AsyncGenerator<Uint8Array> {
  for await (const entry of entries) {
    const type = entry.type ?? "file";
    const name = type === "directory" && !entry.name.endsWith("/") ? `${entry.name}/` : entry.name;
    if (!name || name.startsWith("/") || name.split("/").includes("..")) {
      throw invalidWrite(`entry name "${name}" must be a relative path without ".."`);
    }
    const data = type === "file" ? entry.data : undefined;
    const size = data instanceof Uint8Array ? data.byteLength : type === "file" ? (entry.size ?? 0) : 0;
    // No mtime (0): the same image always gives the same archive bytes.
    yield* tarEntryHeader(
      {
        name,
        size,
        typeflag: type === "directory" ? "5" : "0",
        mode: entry.mode ?? (type === "directory" ? 0o755 : 0o644),
      },
      0o644,
    );
    if (data instanceof Uint8Array) {
      if (size) yield data;
    } else if (data) {
      let written = 0;
      for await (const chunk of data()) {
        written += chunk.byteLength;
        if (written > size) throw invalidWrite(`${name}: more than the ${size} bytes announced`);
        yield chunk;
      }
      if (written !== size) throw invalidWrite(`${name}: ${written} bytes where ${size} were announced`);
    } else if (size) {
      throw invalidWrite(`${name}: a size without data`);
    }
    yield tarPadding(size);
  }
  yield new Uint8Array(TAR_BLOCK * 2);
}
