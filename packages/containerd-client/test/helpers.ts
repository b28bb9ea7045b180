// Shared set-up for the integration tests: a namespace of our own, emptied and removed afterwards.
import { randomBytes } from "node:crypto";
import { ContainerdClient, removeNamespace } from "../src/index.js";

export function testClient(): ContainerdClient {
  return ContainerdClient.fromEnv().withNamespace(`berth-test-${randomBytes(4).toString("hex")}`);
}

/** Delete everything in the client's namespace, then the namespace. */
export async function destroyNamespace(c: ContainerdClient): Promise<void> {
  await removeNamespace(c).catch(() => {});
}
