// Fresh containerd namespaces for the benchmark, and their removal with everything in them.
import { randomBytes, randomUUID } from "node:crypto";
import { readdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerdClient } from "@berth/containerd-client";

const ignore = () => {};

export function freshNamespace(root: ContainerdClient): ContainerdClient {
  return root.withNamespace(`berth-bench-${randomBytes(4).toString("hex")}`);
}

/** Run containerd's garbage collector now: a lease deleted with sync collects before it answers. */
export async function collectGarbage(c: ContainerdClient): Promise<void> {
  const id = `berth-bench-gc-${randomUUID()}`;
  await c.leases.create({ id });
  await c.leases.delete({ id, sync: true });
}

/** Delete the containers, images, leases, snapshots and content of a namespace, then the namespace. */
export async function destroyNamespace(c: ContainerdClient): Promise<void> {
  if (!(await c.namespaceExists())) return;
  for (const { id } of (await c.containers.list({})).containers) {
    await c.tasks.kill({ containerId: id, signal: 9, all: true }).catch(ignore);
    await c.tasks.wait({ containerId: id }, { timeout: 5_000 }).catch(ignore);
    await c.tasks.delete({ containerId: id }).catch(ignore);
    await c.containers.delete({ id }).catch(ignore);
  }
  for (const { name } of (await c.images.list({})).images) await c.images.delete({ name }).catch(ignore);
  for (const { id } of (await c.leases.list({})).leases) await c.leases.delete({ id }).catch(ignore);
  // Snapshots: children before parents.
  for (let round = 0; round < 20; round++) {
    const infos = [];
    for await (const r of c.snapshots.list({ snapshotter: "overlayfs" })) infos.push(...r.info);
    if (infos.length === 0) break;
    const parents = new Set(infos.map((i) => i.parent));
    for (const i of infos) {
      if (!parents.has(i.name))
        await c.snapshots.remove({ snapshotter: "overlayfs", key: i.name }).catch(ignore);
    }
  }
  for await (const r of c.content.list({})) {
    for (const i of r.info) await c.content.delete({ digest: i.digest }).catch(ignore);
  }
  // Blobs no other namespace holds go now, not at the collector's next pass during a measurement.
  await collectGarbage(c);
  await c.namespaces.delete({ name: c.namespace });
  await removeCgroups(c.namespace);
}

/** runc leaves the per-namespace cgroup parent (/<namespace>) in every hierarchy; remove it once empty. */
async function removeCgroups(namespace: string): Promise<void> {
  const base = "/sys/fs/cgroup";
  const dirs = [join(base, namespace)];
  for (const d of await readdir(base).catch(() => [] as string[])) dirs.push(join(base, d, namespace));
  for (const d of dirs) await rmdir(d).catch(ignore);
}
