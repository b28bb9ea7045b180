// CRI-O is not packaged by Debian: the CRI parts run against containerd's CRI plugin, which serves the
// same runtime.v1 API.
import { afterAll, describe, expect, it } from "vitest";
import { daemonSet } from "../../../test/support/daemon-set.js";
import { CriClient } from "../src/index.js";

describe("CRI runtime.v1", () => {
  const cri = CriClient.fromEnv();
  afterAll(() => cri.close());

  it("names the runtime and its CRI API version", async () => {
    const v = await cri.runtime.version({ version: "v1" });
    expect(v.runtimeName).toBe("containerd");
    expect(v.runtimeApiVersion).toBe("v1");
    expect(v.runtimeVersion).toMatch(daemonSet.containerd);
  });

  it("reports runtime and network ready", async () => {
    const { status } = await cri.runtime.status({});
    const ready = Object.fromEntries((status?.conditions ?? []).map((c) => [c.type, c.status]));
    expect(ready).toMatchObject({ RuntimeReady: true, NetworkReady: true });
  });

  it("lists images through ImageService", async () => {
    const res = await cri.image.listImages({});
    expect(Array.isArray(res.images)).toBe(true);
  });
});
