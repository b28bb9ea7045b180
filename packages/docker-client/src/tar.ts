// A small streaming tar writer and reader (ustar, with PAX headers for long names), enough for build
// contexts, putArchive and reading getArchive/export output without buffering whole archives.
import { ProtocolError, ValidationError } from "@berth/runtime-core";
import { parsePax, TAR_BLOCK, tarEntryHeader, tarPadding } from "@berth/runtime-core/internal";

const encoder = new TextEncoder();

/** One entry to write with packTar(). */
export interface TarEntry {
  /** Path inside the archive; directories end with "/" or use type "directory". */
  name: string;
  /** Default "file" (or "directory" for a name ending in "/"). */
  type?: "file" | "directory" | "symlink";
  /** File content (files only). */
  data?: string | Uint8Array;
  /** Permission bits, default 0o644 for files and 0o755 for directories. */
  mode?: number;
  /** Owner's user id (default 0). */
  uid?: number;
  /** Owner's group id (default 0). */
  gid?: number;
  /** Modification time, default now. */
  mtime?: Date;
  /** A symlink's target (symlinks only). */
  linkTarget?: string;
}

/** Write entries as a tar stream; entries can come from an async iterable, so memory stays flat. */
export async function* packTar(
  entries: Iterable<TarEntry> | AsyncIterable<TarEntry>,
): AsyncGenerator<Uint8Array> {
  for await (const entry of entries) {
    if (!entry.name || entry.name.startsWith("/") || entry.name.split("/").includes("..")) {
      throw new ValidationError(`tar entry name "${entry.name}" must be a relative path without ".."`);
    }
    const type = entry.type ?? (entry.name.endsWith("/") ? "directory" : "file");
    const typeflag = type === "directory" ? "5" : type === "symlink" ? "2" : "0";
    const data =
      type === "file"
        ? typeof entry.data === "string"
          ? encoder.encode(entry.data)
          : (entry.data ?? new Uint8Array())
        : new Uint8Array();
    const name = type === "directory" && !entry.name.endsWith("/") ? `${entry.name}/` : entry.name;
    const link = entry.linkTarget ?? "";
    const owner = {
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      mtime: Math.floor((entry.mtime ?? new Date()).getTime() / 1000),
    };
    const mode = entry.mode ?? (typeflag === "5" ? 0o755 : 0o644);
    yield* tarEntryHeader(
      { name, size: data.length, typeflag, mode, ...owner, linkName: link },
      entry.mode ?? 0o644,
    );
    if (data.length) {
      yield data;
      yield tarPadding(data.length);
    }
  }
  yield new Uint8Array(TAR_BLOCK * 2);
}

/** One entry read by unpackTar(). */
export interface TarHeader {
  /** The path in the archive, never with a ".." segment. It may start with "/" (the engines' getArchive
   *  of "/" does): place it under a root with path.join, never path.resolve. */
  name: string;
  /** The entry's kind; devices, FIFOs and the like are "other". */
  type: "file" | "directory" | "symlink" | "hardlink" | "other";
  /** The data's size in bytes (0 for all but files). */
  size: number;
  /** Permission bits. */
  mode: number;
  /** Owner's user id. */
  uid: number;
  /** Owner's group id. */
  gid: number;
  /** Modification time. */
  mtime: Date;
  /** A symlink's target as the archive says it, not resolved (often absolute in a container's files);
   *  a hard link's, a path in the archive like `name`. */
  linkTarget: string;
}

/** PAX and GNU long-name records hold a few names: past this, the archive is not one we read. */
const MAX_META_BYTES = 1024 * 1024;

/** A path from the archive that cannot climb out of the directory it is placed under. */
function safePath(path: string, what: string): string {
  if (path.includes("\0") || path.split("/").includes("..")) {
    throw new ProtocolError(
      `tar ${what} ${JSON.stringify(path.slice(0, 200))} holds a ".." segment or a NUL`,
    );
  }
  return path;
}

function readString(block: Uint8Array, offset: number, width: number): string {
  const slice = block.subarray(offset, offset + width);
  const end = slice.indexOf(0);
  return new TextDecoder().decode(end === -1 ? slice : slice.subarray(0, end));
}

function readOctal(block: Uint8Array, offset: number, width: number): number {
  const text = readString(block, offset, width).trim();
  if (!text) return 0;
  return /^[0-7]+$/.test(text) ? Number.parseInt(text, 8) : Number.NaN;
}

/** Read a tar stream entry by entry. Each entry's data is collected into one buffer (for the files one
 *  copies in and out); `maxEntryBytes` bounds it. */
export async function* unpackTar(
  chunks: AsyncIterable<Uint8Array>,
  { maxEntryBytes = 64 * 1024 * 1024 }: { maxEntryBytes?: number } = {},
): AsyncGenerator<
  TarHeader & {
    /** The entry's data (empty for all but files). */
    data: Uint8Array;
  }
> {
  let buffer: Uint8Array = new Uint8Array(0);
  const iterator = chunks[Symbol.asyncIterator]();
  let done = false;
  const need = async (n: number): Promise<boolean> => {
    // Gather chunks until n bytes are there, then join them once.
    const parts = [buffer];
    let total = buffer.length;
    while (total < n && !done) {
      const next = await iterator.next();
      if (next.done) {
        done = true;
        break;
      }
      parts.push(next.value);
      total += next.value.length;
    }
    if (parts.length > 1) buffer = Buffer.concat(parts, total);
    return buffer.length >= n;
  };
  const take = (n: number): Uint8Array => {
    const out = buffer.subarray(0, n);
    buffer = buffer.subarray(n);
    return out;
  };
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  try {
    while (await need(TAR_BLOCK)) {
      const block = take(TAR_BLOCK);
      if (block.every((b) => b === 0)) return;
      const size = readOctal(block, 124, 12);
      const typeflag = String.fromCharCode(block[156] ?? 48);
      if (!Number.isSafeInteger(size) || size < 0)
        throw new ProtocolError("tar header with a malformed size");
      const padded = size + ((TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK);
      if (size > maxEntryBytes) throw new ValidationError(`tar entry larger than ${maxEntryBytes} bytes`);
      if ("xgLK".includes(typeflag) && size > MAX_META_BYTES) {
        throw new ProtocolError(`tar metadata record larger than ${MAX_META_BYTES} bytes`);
      }
      if (!(await need(padded))) throw new ProtocolError("tar stream ended inside an entry");
      const data = take(padded).slice(0, size);
      if (typeflag === "x") {
        pax = parsePax(data).records; // a malformed record ends the header: those before it still count
        continue;
      }
      if (typeflag === "g") continue;
      if (typeflag === "L") {
        longName = new TextDecoder().decode(data).replace(/\0+$/, "");
        continue;
      }
      const prefix = readString(block, 345, 155);
      const baseName = readString(block, 0, 100);
      const name = safePath(pax.path ?? longName ?? (prefix ? `${prefix}/${baseName}` : baseName), "entry");
      const type =
        typeflag === "0" || typeflag === "\0" || typeflag === "7"
          ? "file"
          : typeflag === "5"
            ? "directory"
            : typeflag === "2"
              ? "symlink"
              : typeflag === "1"
                ? "hardlink"
                : "other";
      yield {
        name,
        type,
        size,
        mode: readOctal(block, 100, 8),
        uid: readOctal(block, 108, 8),
        gid: readOctal(block, 116, 8),
        mtime: new Date(readOctal(block, 136, 12) * 1000),
        linkTarget:
          type === "hardlink"
            ? safePath(pax.linkpath ?? readString(block, 157, 100), "hard link target")
            : (pax.linkpath ?? readString(block, 157, 100)),
        data,
      };
      pax = {};
      longName = undefined;
    }
  } finally {
    await iterator.return?.();
  }
}
