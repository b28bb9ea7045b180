// Fresh containerd namespaces for the benchmark, and their removal with everything in them.
import { randomBytes } from "node:crypto";
import { readdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { type ContainerdClient, collectGarbage, removeNamespace } from "@berth/containerd-client";

export function freshNamespace(root: ContainerdClient): ContainerdClient {
  return root.withNamespace(`berth-bench-${randomBytes(4).toString("hex")}`);
}

/** Delete the containers, images, leases, snapshots and content of a namespace, then the namespace. */
export async function destroyNamespace(c: ContainerdClient): Promise<void> {
  if (!(await removeNamespace(c))) return;
  // Blobs no other namespace holds go now, not at the collector's next pass during a measurement. The
  // collector's lease recreates the namespace (containerd creates one on any write), so it goes again.
  await collectGarbage(c);
  await c.namespaces.delete({ name: c.namespace });
  await removeCgroups(c.namespace);
}

/** runc leaves the per-namespace cgroup parent (/<namespace>) in every hierarchy; remove it once empty. */
async function removeCgroups(namespace: string): Promise<void> {
  const base = "/sys/fs/cgroup";
  const dirs = [join(base, namespace)];
  for (const d of await readdir(base).catch(() => [] as string[])) dirs.push(join(base, d, namespace));
  for (const d of dirs) await rmdir(d).catch(() => {});
}
