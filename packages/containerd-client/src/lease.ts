// The lease a pull or import works under: what it writes is held by the lease until the image record
// holds it, and everything is collected once the lease goes (at once after a failure, so the caller
// finds a clean store when the call returns). The expiry is a safety net should this process die.
import { randomUUID } from "node:crypto";
import type { BerthError } from "@berth/runtime-core";
import type { ContainerdClient } from "./client.js";

/** The lease label that makes containerd's garbage collector drop the lease at that time (RFC 3339). */
export const GC_EXPIRE_LABEL = "containerd.io/gc.expire";

/** One hour: long enough for any pull, short enough that a crashed process's garbage goes the same day. */
export const DEFAULT_LEASE_EXPIRY_MS = 3_600_000;

/** Create a lease named `<prefix>-<uuid>` that expires after `expiryMs`; returns its id. */
export async function createLease(
  client: ContainerdClient,
  prefix: string,
  expiryMs = DEFAULT_LEASE_EXPIRY_MS,
  signal?: AbortSignal,
): Promise<string> {
  const id = `${prefix}-${randomUUID()}`;
  const expiry = new Date(Date.now() + expiryMs).toISOString();
  await client.leases.create({ id, labels: { [GC_EXPIRE_LABEL]: expiry } }, signal ? { signal } : {});
  return id;
}

/**
 * Drop a lease. After a success, lazily (what it held is held by the image now) and an error is thrown;
 * after a failure, with a synchronous collection so nothing is left when this returns, and an error is
 * swallowed (the failure that brought us here is the one to report).
 */
export async function dropLease(client: ContainerdClient, id: string, ok: boolean): Promise<void> {
  await client.leases.delete({ id, sync: !ok }).catch((err: BerthError) => {
    if (ok) throw err;
  });
}
