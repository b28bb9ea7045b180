// Where an import reads from: a tar stream (plain or gzip-compressed), a tar file, or a directory holding
// an unpacked OCI image layout. All three come out as the same sequence of streamed entries.
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline, Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { AbortedError, ValidationError } from "@berth/runtime-core";
import { readTar, type TarEntry } from "./tar.js";

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
        cause,
      });
    });
    if (s.isDirectory()) {
      yield* directoryEntries(source, "");
      return;
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
        reject(new AbortedError("import: aborted", { operation: "import", cause: signal.reason }));
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

async function* directoryEntries(root: string, prefix: string): AsyncGenerator<TarEntry> {
  const names = (await readdir(join(root, prefix))).sort();
  for (const name of names) {
    const rel = prefix ? `${prefix}/${name}` : name;
    // stat, not lstat: a layout may link blobs from elsewhere.
    const s = await stat(join(root, rel));
    if (s.isDirectory()) {
      yield* directoryEntries(root, rel);
    } else if (s.isFile()) {
      const path = join(root, rel);
      let stream: ReturnType<typeof createReadStream> | undefined;
      try {
        yield {
          name: rel,
          type: "file",
          size: s.size,
          mode: s.mode & 0o7777,
          linkName: "",
          body: {
            [Symbol.asyncIterator]: () => {
              stream = createReadStream(path, { highWaterMark: 1 << 20 });
              return stream[Symbol.asyncIterator]();
            },
          },
        };
      } finally {
        stream?.destroy();
      }
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
        cause,
      });
    }
    throw cause;
  } finally {
    gunzip.destroy();
    input.destroy();
  }
}
