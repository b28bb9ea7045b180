// runtime-core's conformance suite on containerd, in a namespace of its own (removed afterwards), with
// logs in a temporary directory, and a hostile registry of the test's own (a proxy on 127.0.0.1 in front
// of the harness's registry).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeConformance } from "@berth/runtime-core/conformance";
import { afterAll, beforeAll, describe, it } from "vitest";
import { TamperingRegistry } from "../../../test/support/tampering-registry.js";
import { ContainerdClient, ContainerdRuntime, removeNamespace } from "../src/index.js";

const namespace = `berth-conformance-${randomBytes(4).toString("hex")}`;
const logDir = mkdtempSync(join(tmpdir(), "berth-conformance-logs-"));
const client = ContainerdClient.fromEnv().withNamespace(namespace);
const hostile = await TamperingRegistry.start(process.env.BERTH_REGISTRY ?? "");

afterAll(async () => {
  try {
    // containerd may refuse to delete a namespace for a moment after its last snapshots went: retry.
    for (let attempt = 1; ; attempt++) {
      try {
        await removeNamespace(client);
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await hostile.close();
    client.close();
    rmSync(logDir, { recursive: true, force: true });
  }
});

runtimeConformance({
  name: "containerd",
  image: process.env.BERTH_TEST_IMAGE ?? "",
  // Each connect() opens its own connection: the suite closes the runtime it was given.
  connect: async () =>
    new ContainerdRuntime(ContainerdClient.fromEnv().withNamespace(namespace), {
      logDir,
      runtime: { root: process.env.BERTH_RUNC_ROOT ?? "" },
    }),
  hostileRegistry: hostile.forConformance(),
  test: { describe, it, beforeAll, afterAll },
});
