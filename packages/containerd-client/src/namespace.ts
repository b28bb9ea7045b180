// Emptying and removing a namespace: containerd refuses to delete a namespace that still holds anything.
import { randomUUID } from "node:crypto";
import type { ContainerdClient } from "./client.js";
import { Container } from "./container.js";

const ignore = () => {};

/** Run containerd's garbage collector now: a lease deleted with `sync` is collected before the answer. */
export async function collectGarbage(client: ContainerdClient): Promise<void> {
  const id = `berth-gc-${randomUUID()}`;
  await client.leases.create({ id });
  await client.leases.delete({ id, sync: true });
}

/**
 * Kill and delete every task and container of the client's namespace, delete its images, leases,
 * snapshots (children before parents) and content, then the namespace itself. Returns false when the
 * namespace did not exist.
 */
export async function removeNamespace(
  client: ContainerdClient,
  options: { snapshotter?: string } = {},
): Promise<boolean> {
  // Right after its last task or snapshot went, containerd may still see the namespace as in use for a
  // moment (a shim's cleanup, the garbage collector): empty it again and retry a few times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await emptyAndRemove(client, options);
    } catch (err) {
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 300 * attempt));
    }
  }
}

async function emptyAndRemove(
  client: ContainerdClient,
  { snapshotter = "overlayfs" }: { snapshotter?: string },
): Promise<boolean> {
  const c = client;
  if (!(await c.namespaceExists())) return false;
  // Each container with its task (killed) and snapshot; what is left is swept up below.
  for (const container of await Container.list(c, [])) await container.delete().catch(ignore);
  for (const { name } of (await c.images.list({})).images) await c.images.delete({ name }).catch(ignore);
  for (const { id } of (await c.leases.list({})).leases) await c.leases.delete({ id }).catch(ignore);
  for (let round = 0; round < 20; round++) {
    const infos = [];
    for await (const r of c.snapshots.list({ snapshotter })) infos.push(...r.info);
    if (infos.length === 0) break;
    const parents = new Set(infos.map((i) => i.parent));
    for (const i of infos) {
      if (!parents.has(i.name)) await c.snapshots.remove({ snapshotter, key: i.name }).catch(ignore);
    }
  }
  for await (const r of c.content.list({})) {
    for (const i of r.info) await c.content.delete({ digest: i.digest }).catch(ignore);
  }
  await c.namespaces.delete({ name: c.namespace });
  return true;
}
