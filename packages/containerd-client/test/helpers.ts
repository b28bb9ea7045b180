// Shared set-up for the integration tests: a namespace of our own, emptied and removed afterwards, and the
// extra test images.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ContainerdClient, removeNamespace } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));

export function testClient(): ContainerdClient {
  return ContainerdClient.fromEnv().withNamespace(`berth-test-${randomBytes(4).toString("hex")}`);
}

/** Delete everything in the client's namespace, then the namespace. */
export async function destroyNamespace(c: ContainerdClient): Promise<void> {
  await removeNamespace(c).catch(() => {});
}

/** Push images.sh's images (whiteout, big, multi) to `registry` under `tag`; returns the multi index's
 *  linux/amd64 manifest digest. */
export async function pushTestImages(registry: string, tag: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    "bash",
    [join(here, "images.sh"), join(here, "../../../.runtimes/oci/busybox"), registry, tag],
    { timeout: 60_000 },
  );
  return stdout.trim().split("\n").pop() as string;
}
