// Reading response bodies from registries, token services and redirect targets, none of which is trusted
// to end: every body read whole has a cap, and past it the connection is dropped (the body destroyed), so
// a server that never stops sending costs neither memory nor a connection held open.
import { AbortedError, isBerthError, ProtocolError, UnavailableError } from "@berth/runtime-core";
import type { Dispatcher } from "undici";

type Body = Dispatcher.ResponseData["body"];

/** Largest token-service answer and error body read (their detail is shown cut to a few hundred bytes). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

const DETAILS = { operation: "registry", backend: "containerd" } as const;

/** The whole body; past `max` bytes a ProtocolError naming `what`. A failed read is a typed error too. */
export async function readCapped(
  body: Body,
  max: number,
  what: string,
  signal?: AbortSignal,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of readable(body, what, signal)) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      throw new ProtocolError(`${what} is larger than ${max} bytes`, DETAILS);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Up to `max` bytes of an error body, as text, for the message; the rest is not read. Never fails. */
export async function readDetail(body: Body, max = MAX_MESSAGE_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= max) break;
    }
  } catch {
    // What arrived is enough for a message.
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, max).toString("utf8");
}

/** Throw away a body nobody reads (a redirect's, a challenge's), dropping the connection if it runs on. */
export function discard(body: Body): void {
  let size = 0;
  body.on("error", () => {});
  body.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_MESSAGE_BYTES) body.destroy();
  });
}

/** A body's chunks; a failed read is a typed error (the caller's abort, or the network's), not undici's. */
export async function* readable(
  body: Body,
  what: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of body) yield chunk as Buffer;
  } catch (err) {
    if (isBerthError(err)) throw err;
    if (signal?.aborted) throw new AbortedError(`${what}: aborted`, { ...DETAILS, cause: err });
    const message = (err as Error)?.message ?? String(err);
    throw new UnavailableError(`${what}: ${message}`, { ...DETAILS, cause: err });
  }
}
