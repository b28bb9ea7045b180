// Shared set-up for the integration tests: a namespace of our own, emptied and removed afterwards.
import { randomBytes } from "node:crypto";
import { ContainerdClient } from "../src/index.js";

export function testClient(): ContainerdClient {
  return ContainerdClient.fromEnv().withNamespace(`berth-test-${randomBytes(4).toString("hex")}`);
}

/** Delete everything in the client's namespace, then the namespace. */
export async function destroyNamespace(c: ContainerdClient): Promise<void> {
  const ignore = () => {};
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
  await c.namespaces.delete({ name: c.namespace }).catch(ignore);
}
