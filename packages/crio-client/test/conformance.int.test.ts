// runtime-core's conformance suite on the CRI, against containerd's CRI plugin (CRI-O is not packaged
// for this harness; it serves the same runtime.v1 API).
import { runtimeConformance } from "@berth/runtime-core/conformance";
import { afterAll, beforeAll, describe, it } from "vitest";
import { CriRuntime } from "../src/index.js";

runtimeConformance({
  name: "cri (containerd)",
  image: process.env.BERTH_TEST_IMAGE ?? "",
  connect: () =>
    CriRuntime.connect({
      env: process.env,
      ...(process.env.BERTH_CRI_LOG_DIR ? { logRoot: process.env.BERTH_CRI_LOG_DIR } : {}),
    }),
  test: { describe, it, beforeAll, afterAll },
});
