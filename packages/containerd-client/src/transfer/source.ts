// Where an import reads from: a tar stream (plain or gzip-compressed), a tar file, or a directory holding
// an unpacked OCI image layout. All three come out as the same sequence of streamed entries. A directory
// is read as a tar archive is: its symlinks are entries (resolved by the importer inside the archive,
// never followed on the host), FIFOs and devices are entries never opened, and files are opened inside
// the directory, so a layout cannot reach the host's files or hang the import.
import { createReadStream } from "node:fs";
import { lstat, readdir, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline, Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { AbortedError, ValidationError } from "@berth/runtime-core";
import { openInRoot } from "../in-root.js";
import { readTar, type TarEntry } from "./tar.js";

/** Directory levels walked below a layout's root (blobs/<algorithm>/<digest> needs two). */
const MAX_DEPTH = 16;

/** A tar stream (Node Readable, or an async or sync iterable of bytes; optionally gzip-compressed), or the
 *  path of a tar file or of a directory holding an OCI image layout. */
export type ImportSource = string | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** The archive's entries, whatever the source; each body is streamed from where it lies. An abort fails
 *  a read that waits on the source at once. */
export async function* archiveEntries(source: ImportSource, signal: AbortSignal): AsyncGenerator<TarEntry> {
  if (typeof source === "string") {
    const s = await stat(source).catch((cause: unknown) => {
      throw new ValidationError(`import source ${source}: ${(cause as Error).message}`, {
        operation: "import",
        backend: "containerd",
        cause,
      });
    });
    if (s.isDirectory()) {
      yield* directoryEntries(source, "", 0);
      return;
    }
    // A FIFO or device would be waited on, or read forever.
    if (!s.isFile()) {
      throw new ValidationError(`import source ${source} is neither a file nor a directory`, {
        operation: "import",
        backend: "containerd",
      });
    }
    yield* readTar(abortable(gunzipIfNeeded(createReadStream(source)), signal));
    return;
  }
  yield* readTar(abortable(gunzipIfNeeded(source), signal));
}

/** Pass bytes through until the signal fires, then fail the pending read and close the source. (Not a
 *  Promise.race against one long-lived abort promise: each race would leave it a reaction holding that
 *  read's chunk, so the whole archive would stay in memory.) */
async function* abortable(
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  const read = () =>
    new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
      const onAbort = () =>
        reject(
          new AbortedError("import: aborted", {
            operation: "import",
            backend: "containerd",
            cause: signal.reason,
          }),
        );
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      it.next().then(
        (r) => {
          signal.removeEventListener("abort", onAbort);
          resolve(r);
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  let done = false;
  try {
    for (;;) {
      const next = await read();
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    // After an abort a read may still be pending: do not wait for it.
    if (!done) {
      if (signal.aborted) it.return?.().catch(() => {});
      else await it.return?.();
    }
  }
}

const noBody: AsyncIterable<Uint8Array> = { async *[Symbol.asyncIterator]() {} };

async function* directoryEntries(root: string, prefix: string, depth: number): AsyncGenerator<TarEntry> {
  const fsError = (path: string) => (cause: unknown) => {
    const code = (cause as { code?: unknown }).code;
    throw new ValidationError(`import: ${path}: ${typeof code === "string" ? code : String(cause)}`, {
      operation: "import",
      backend: "containerd",
      cause,
    });
  };
  if (depth > MAX_DEPTH)
    throw new ValidationError(`import: ${prefix} is nested too deep`, {
      operation: "import",
      backend: "containerd",
    });
  const names = (await readdir(join(root, prefix)).catch(fsError(prefix || "."))).sort();
  for (const name of names) {
    const rel = prefix ? `${prefix}/${name}` : name;
    // lstat: a link is an entry of its own, resolved inside the layout by the importer.
    const s = await lstat(join(root, rel)).catch(fsError(rel));
    const entry = { name: rel, size: 0, mode: s.mode & 0o7777, linkName: "", body: noBody };
    if (s.isSymbolicLink()) {
      yield { ...entry, type: "symlink", linkName: await readlink(join(root, rel)).catch(fsError(rel)) };
    } else if (s.isDirectory()) {
      yield* directoryEntries(root, rel, depth + 1);
    } else if (!s.isFile()) {
      yield { ...entry, type: "other" };
    } else {
      const size = s.size;
      yield {
        ...entry,
        type: "file",
        size,
        body: {
          async *[Symbol.asyncIterator]() {
            if (size === 0) return;
            // Opened inside the layout, a regular file only; no more than lstat saw is read.
            const handle = await openInRoot(root, rel, { operation: "import" });
            try {
              yield* handle.createReadStream({
                start: 0,
                end: size - 1,
                highWaterMark: 1 << 20,
                autoClose: false,
              });
            } finally {
              await handle.close();
            }
          },
        },
      };
    }
  }
}

/** Pass a tar stream through, or gunzip it when it starts with the gzip magic bytes. */
async function* gunzipIfNeeded(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const it =
    Symbol.asyncIterator in source
      ? source[Symbol.asyncIterator]()
      : (async function* () {
          yield* source;
        })();
  let first: IteratorResult<Uint8Array>;
  do {
    first = await it.next();
  } while (!first.done && first.value.byteLength === 0);
  if (first.done) return;
  const head = first.value;
  async function* all(): AsyncGenerator<Uint8Array> {
    try {
      yield head;
      for (;;) {
        const next = await it.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      await it.return?.();
    }
  }
  if (!(head[0] === 0x1f && head[1] === 0x8b)) {
    yield* all();
    return;
  }
  const gunzip = createGunzip();
  const input = Readable.from(all(), { objectMode: false });
  pipeline(input, gunzip, () => {});
  try {
    for await (const chunk of gunzip) yield chunk as Uint8Array;
  } catch (cause) {
    if ((cause as { code?: string }).code?.startsWith("Z_")) {
      throw new ValidationError(`import: bad gzip stream: ${(cause as Error).message}`, {
        operation: "import",
        backend: "containerd",
        cause,
      });
    }
    throw cause;
  } finally {
    gunzip.destroy();
    input.destroy();
  }
}
