// runtime-core's conformance suite on the CRI, against containerd's CRI plugin (CRI-O is not packaged
// for this harness; it serves the same runtime.v1 API), with a hostile registry of the test's own (a
// proxy on 127.0.0.1 in front of the harness's registry; containerd speaks plain HTTP to loopback hosts).
import { runtimeConformance } from "@berth/runtime-core/conformance";
import { afterAll, beforeAll, describe, it } from "vitest";
import { TamperingRegistry } from "../../../test/support/tampering-registry.js";
import { CriClient, CriRuntime } from "../src/index.js";

const hostile = await TamperingRegistry.start(process.env.BERTH_REGISTRY ?? "");

runtimeConformance({
  name: "cri (containerd)",
  image: process.env.BERTH_TEST_IMAGE ?? "",
  connect: () =>
    CriRuntime.connect({
      env: process.env,
      ...(process.env.BERTH_CRI_LOG_DIR ? { logRoot: process.env.BERTH_CRI_LOG_DIR } : {}),
    }),
  hostileRegistry: hostile.forConformance(),
  test: { describe, it, beforeAll, afterAll },
});

afterAll(async () => {
  await hostile.close();
  const cri = CriClient.fromEnv();
  for (const m of hostile.made) await cri.removeImage(m.image).catch(() => {});
  cri.close();
});
