// Writing and reading blobs in containerd's content store. Content.Write is one bidirectional stream per
// blob: STAT (what is already there) → WRITE chunks at offsets → COMMIT with the expected digest and size.
// The daemon answers each request once, so the session is a simple request/response dialogue.

import type { DeepPartial, Encoded } from "@berth/grpc";
import { DigestMismatchError, isBerthError, ProtocolError } from "@berth/runtime-core";
import { digestMismatchIn } from "@berth/runtime-core/internal";
import type { ContainerdClient } from "./client.js";
import {
  WriteAction,
  WriteContentRequest,
  type WriteContentResponse,
} from "./generated/github.com/containerd/containerd/api/services/content/v1/content.js";
import { AsyncQueue } from "./queue.js";

/** Bytes per WRITE message: well under the 16 MiB gRPC limit, few enough round trips. */
const CHUNK_BYTES = 1024 * 1024;
/** WRITE messages sent ahead of their answers. */
const WINDOW = 4;

/** Regroup a byte stream into groups of exactly `size` bytes (the last may be shorter), without copying:
 *  the registry sends ~64 KiB pieces, a caller may hand over one huge buffer, and a gRPC message must
 *  stay small. The pieces are copied once, into the message (see writeMessage). */
async function* regroup(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  size: number,
): AsyncGenerator<{ parts: Uint8Array[]; bytes: number }> {
  let parts: Uint8Array[] = [];
  let n = 0;
  for await (const part of source) {
    let rest = part;
    while (n + rest.byteLength >= size) {
      const take = size - n;
      parts.push(rest.subarray(0, take));
      yield { parts, bytes: size };
      rest = rest.subarray(take);
      parts = [];
      n = 0;
    }
    if (rest.byteLength > 0) {
      parts.push(rest);
      n += rest.byteLength;
    }
  }
  if (n > 0) yield { parts, bytes: n };
}

/** Protobuf tag of WriteContentRequest.data: field 6, length-delimited. */
const DATA_TAG = (6 << 3) | 2;

/** Room for a WRITE message's fields other than the data: action, offset, the data's tag and length. */
const WRITE_HEAD_BYTES = 32;

/**
 * A WRITE request in wire format, in `buffer` (which must hold `bytes + WRITE_HEAD_BYTES`), its data
 * copied once from the pieces. ts-proto's encode would copy a chunk twice more (into a growing writer,
 * then out of it) and leave 3 MiB of garbage per MiB. Like containerd's own client, only the action, the
 * offset and the data are sent: the ref, size and digest go with STAT and COMMIT (a WRITE naming
 * `expected` has the daemon look that digest up again for every chunk).
 */
function writeMessage(offset: number, parts: readonly Uint8Array[], bytes: number, buffer: Buffer): Buffer {
  const head = WriteContentRequest.encode(
    WriteContentRequest.fromPartial({ action: WriteAction.WRITE, offset: BigInt(offset) }),
  ).finish();
  buffer.set(head, 0);
  let at = head.byteLength;
  buffer[at++] = DATA_TAG;
  for (let n = bytes; ; n = Math.floor(n / 128)) {
    if (n < 0x80) {
      buffer[at++] = n;
      break;
    }
    buffer[at++] = (n & 0x7f) | 0x80;
  }
  for (const part of parts) {
    buffer.set(part, at);
    at += part.byteLength;
  }
  return buffer.subarray(0, at);
}

function closeSource(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): void {
  if (Symbol.asyncIterator in source)
    source[Symbol.asyncIterator]()
      .return?.()
      ?.catch(() => {});
}

/** Options of writeBlob(). */
export interface WriteBlobOptions {
  /** The ingest ref: writes under the same ref resume each other (one writer at a time). */
  ref: string;
  /** The blob's expected digest; the commit is refused unless the bytes match it. */
  digest: string;
  /** The blob's size in bytes. */
  size: number;
  /** Labels of the committed blob (garbage-collection references, the uncompressed digest). */
  labels?: Record<string, string>;
  /** Cancels the write: an AbortedError once the signal fires; nothing is committed. */
  signal?: AbortSignal;
  /** Called after each chunk the daemon accepted. */
  onProgress?: (offset: number) => void;
  /** Called once the daemon holds every byte, before the commit (which syncs the blob to disk). */
  onWritten?: () => void;
}

/**
 * Write a blob; resolves with how many bytes were sent (0 when the daemon already held them all, e.g. in
 * another namespace: content is shared), and `existed` when the namespace held the blob already (then
 * `data` is not asked for anything). `data(offset)` is asked for the bytes from `offset` on (the daemon
 * may already hold a prefix from an interrupted write under the same ref); it must throw before ending if
 * the bytes are bad, and then nothing is committed: the ingest is aborted. The daemon hashes what it
 * receives and refuses to commit bytes that do not match `digest` (a DigestMismatchError).
 */
export async function writeBlob(
  client: ContainerdClient,
  data: (offset: number) => Promise<AsyncIterable<Uint8Array> | Iterable<Uint8Array>>,
  options: WriteBlobOptions,
): Promise<{
  /** Bytes sent to the daemon (0 when it already held them). */
  written: number;
  /** Whether the namespace held the blob already. */
  existed: boolean;
}> {
  const requests = new AsyncQueue<DeepPartial<WriteContentRequest> | Encoded<WriteContentRequest>>();
  const call = client.content.write(requests, options.signal ? { signal: options.signal } : {});
  const responses = call[Symbol.asyncIterator]();
  // Answers are read in order. While we wait on the source (a slow registry), one read of the answers is
  // kept pending (`ahead`) and raced against it: if the call fails meanwhile (the daemon went away), the
  // write fails at once instead of whenever the source next delivers.
  let ahead: Promise<IteratorResult<WriteContentResponse>> | undefined;
  const reply = async (): Promise<WriteContentResponse> => {
    const pending = ahead ?? responses.next();
    ahead = undefined;
    const r = await pending;
    if (r.done)
      throw new ProtocolError("Content.Write: the stream ended early", { operation: "Content.Write" });
    return r.value;
  };
  /** Rejects when the call fails; never resolves. */
  const callFailed = (): Promise<never> => {
    ahead ??= responses.next();
    return ahead.then(() => new Promise<never>(() => {}));
  };
  /** `work`, unless the call fails first. */
  const unlessCallFails = <T>(work: Promise<T>): Promise<T> => Promise.race([work, callFailed()]);
  const exchange = async (req: DeepPartial<WriteContentRequest>): Promise<WriteContentResponse> => {
    requests.push(req);
    return reply();
  };
  const base = { ref: options.ref, total: BigInt(options.size), expected: options.digest };
  let committed = false;
  try {
    let stat: WriteContentResponse;
    try {
      stat = await exchange({ ...base, action: WriteAction.STAT });
    } catch (err) {
      // The namespace holds the blob already (the daemon also put it under the caller's lease).
      if (isBerthError(err) && err.code === "Conflict" && /already exists/i.test(err.message)) {
        committed = true;
        return { written: 0, existed: true };
      }
      throw err;
    }
    let offset = Number(stat.offset);
    if (offset > options.size) offset = 0;
    const resumedAt = offset;
    if (offset < options.size || options.size === 0) {
      // Up to WINDOW chunks travel before their acknowledgements are awaited, so reading the source
      // (the registry) overlaps with the daemon writing, while memory stays at WINDOW chunks.
      const acked: { end: number; buffer: Buffer }[] = [];
      // A message the daemon has answered was sent (grpc-js framed a copy of it before writing), so its
      // buffer is reused: fresh megabytes per chunk cost page faults and full garbage collections.
      const spare: Buffer[] = [];
      const ack = async () => {
        await reply();
        const { end, buffer } = acked.shift() as { end: number; buffer: Buffer };
        spare.push(buffer);
        options.onProgress?.(end);
      };
      const opening = data(offset);
      let source: AsyncIterator<{ parts: Uint8Array[]; bytes: number }> | undefined;
      try {
        source = regroup(await unlessCallFails(opening), CHUNK_BYTES)[Symbol.asyncIterator]();
        for (;;) {
          const next = await unlessCallFails(source.next());
          if (next.done) break;
          const { parts, bytes } = next.value;
          let buffer = spare.pop();
          if (!buffer || buffer.byteLength < bytes + WRITE_HEAD_BYTES) {
            buffer = Buffer.allocUnsafe(bytes + WRITE_HEAD_BYTES);
          }
          requests.push(writeMessage(offset, parts, bytes, buffer));
          offset += bytes;
          acked.push({ end: offset, buffer });
          if (acked.length >= WINDOW) await ack();
        }
      } catch (err) {
        // Close the source; a read still in flight finishes first (hence not awaited).
        if (source) source.return?.().catch(() => {});
        else opening.then(closeSource, () => {});
        throw err;
      }
      while (acked.length) await ack();
    }
    options.onWritten?.();
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
      const mismatch = digestMismatchIn(msg);
      if (mismatch) {
        const actual = mismatch.expected === options.digest ? mismatch.actual : "(daemon)";
        throw new DigestMismatchError(`Content.Write ${options.digest}: ${msg}`, options.digest, actual, {
          operation: "Content.Write",
          backend: "containerd",
          cause: err,
        });
      }
      if (/already exists/i.test(msg)) {
        committed = true;
        return { written: offset - resumedAt, existed: false };
      }
      throw err;
    }
    committed = true;
    return { written: offset - resumedAt, existed: false };
  } finally {
    requests.close();
    // A read kept pending (`ahead`) would hold up return(): end the call first.
    if (!committed) call.cancel();
    await responses.return?.();
    if (!committed) await client.content.abort({ ref: options.ref }).catch(() => {});
  }
}

/** Read a whole blob from the content store. With `maxBytes`, no more is asked for, and a blob that is
 *  larger (a manifest or config that would be parsed in memory) is a ProtocolError. */
export async function readBlob(
  client: ContainerdClient,
  digest: string,
  signal?: AbortSignal,
  maxBytes?: number,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const request = maxBytes === undefined ? { digest } : { digest, size: BigInt(maxBytes + 1) };
  for await (const r of client.content.read(request, signal ? { signal } : {})) {
    size += r.data.byteLength;
    if (maxBytes !== undefined && size > maxBytes) {
      throw new ProtocolError(`Content.Read ${digest}: larger than ${maxBytes} bytes`, {
        operation: "Content.Read",
        backend: "containerd",
      });
    }
    chunks.push(r.data);
  }
  return Buffer.concat(chunks, size);
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
