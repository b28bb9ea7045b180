// Writing and reading blobs in containerd's content store. Content.Write is one bidirectional stream per
// blob: STAT (what is already there) → WRITE chunks at offsets → COMMIT with the expected digest and size.
// The daemon answers each request once, so the session is a simple request/response dialogue.

import type { DeepPartial } from "@berth/grpc";
import { DigestMismatchError, ProtocolError } from "@berth/runtime-core";
import type { ContainerdClient } from "./client.js";
import {
  WriteAction,
  type WriteContentRequest,
  type WriteContentResponse,
} from "./generated/github.com/containerd/containerd/api/services/content/v1/content.js";
import { AsyncQueue } from "./queue.js";

/** Bytes per WRITE message: well under the 16 MiB gRPC limit, few enough round trips. */
const CHUNK_BYTES = 1024 * 1024;

/** Regroup a byte stream into chunks of about `size` bytes (the registry sends ~64 KiB pieces). */
async function* coalesce(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  size: number,
): AsyncGenerator<Buffer> {
  let parts: Uint8Array[] = [];
  let n = 0;
  for await (const part of source) {
    parts.push(part);
    n += part.byteLength;
    if (n >= size) {
      yield Buffer.concat(parts);
      parts = [];
      n = 0;
    }
  }
  if (n > 0) yield Buffer.concat(parts);
}

export interface WriteBlobOptions {
  ref: string;
  digest: string;
  size: number;
  labels?: Record<string, string>;
  signal?: AbortSignal;
  /** Called after each chunk the daemon accepted. */
  onProgress?: (offset: number) => void;
}

/**
 * Write a blob; resolves with how many bytes were sent (0 when the daemon already held them all, e.g. in
 * another namespace: content is shared). `data(offset)` is asked for the bytes from `offset` on (the daemon may already hold a
 * prefix from an interrupted write under the same ref); it must throw before ending if the bytes are bad,
 * and then nothing is committed: the ingest is aborted.
 */
export async function writeBlob(
  client: ContainerdClient,
  data: (offset: number) => Promise<AsyncIterable<Uint8Array> | Iterable<Uint8Array>>,
  options: WriteBlobOptions,
): Promise<{ written: number }> {
  const requests = new AsyncQueue<DeepPartial<WriteContentRequest>>();
  const call = client.content.write(requests, options.signal ? { signal: options.signal } : {});
  const responses = call[Symbol.asyncIterator]();
  const exchange = async (req: DeepPartial<WriteContentRequest>): Promise<WriteContentResponse> => {
    requests.push(req);
    const r = await responses.next();
    if (r.done)
      throw new ProtocolError("Content.Write: the stream ended early", { operation: "Content.Write" });
    return r.value;
  };
  const base = { ref: options.ref, total: BigInt(options.size), expected: options.digest };
  let committed = false;
  try {
    const stat = await exchange({ ...base, action: WriteAction.STAT });
    let offset = Number(stat.offset);
    if (offset > options.size) offset = 0;
    const resumedAt = offset;
    if (offset < options.size || options.size === 0) {
      for await (const chunk of coalesce(await data(offset), CHUNK_BYTES)) {
        await exchange({ ...base, action: WriteAction.WRITE, offset: BigInt(offset), data: chunk });
        offset += chunk.byteLength;
        options.onProgress?.(offset);
      }
    }
    try {
      await exchange({
        ...base,
        action: WriteAction.COMMIT,
        offset: BigInt(offset),
        labels: options.labels ?? {},
      });
    } catch (err) {
      // containerd rejects a commit whose bytes do not hash to `expected` with FAILED_PRECONDITION.
      const msg = (err as Error).message ?? "";
      if (/unexpected commit digest|unexpected commit size/.test(msg)) {
        throw new DigestMismatchError(`Content.Write ${options.digest}: ${msg}`, options.digest, "(daemon)", {
          operation: "Content.Write",
          backend: "containerd",
          cause: err,
        });
      }
      if (/already exists/i.test(msg)) {
        committed = true;
        return { written: offset - resumedAt };
      }
      throw err;
    }
    committed = true;
    return { written: offset - resumedAt };
  } finally {
    requests.close();
    await responses.return?.();
    if (!committed) await client.content.abort({ ref: options.ref }).catch(() => {});
  }
}

/** Read a whole blob from the content store. */
export async function readBlob(
  client: ContainerdClient,
  digest: string,
  signal?: AbortSignal,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const r of client.content.read({ digest }, signal ? { signal } : {})) chunks.push(r.data);
  return Buffer.concat(chunks);
}

/** True when the content store holds the blob. */
export async function hasBlob(client: ContainerdClient, digest: string): Promise<boolean> {
  try {
    await client.content.info({ digest });
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === "NotFound") return false;
    throw err;
  }
}
