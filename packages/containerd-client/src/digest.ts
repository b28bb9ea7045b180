// sha256 digests as containerd and registries write them ("sha256:<hex>"), and chain IDs.
import { createHash } from "node:crypto";

/** The sha256 digest of `data` (a string is hashed as its UTF-8 bytes), as `sha256:<64 lower-case hex>`. */
export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Chain IDs of a layer stack: chain[0] = diffID[0], chain[i] = sha256(chain[i-1] + " " + diffID[i]). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const parent = out[out.length - 1];
    out.push(parent === undefined ? diffId : sha256(`${parent} ${diffId}`));
  }
  return out;
}
