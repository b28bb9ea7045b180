import { NotFoundError, UnavailableError } from "@berth/runtime-core";
import { afterAll, describe, expect, it } from "vitest";
import { daemonSet } from "../../../test/support/daemon-set.js";
import { ContainerdClient } from "../src/index.js";

describe("containerd", () => {
  const ctd = ContainerdClient.fromEnv();
  afterAll(() => ctd.close());

  it(`reports its version (${daemonSet.containerd.source} here)`, async () => {
    const v = await ctd.version.version();
    expect(v.version).toMatch(daemonSet.containerd);
  });

  it("lists namespaces and sends the namespace as metadata", async () => {
    const { namespaces } = await ctd.namespaces.list();
    expect(Array.isArray(namespaces)).toBe(true);
    const other = ctd.withNamespace(`berth-test-${process.pid}`);
    const { images } = await other.images.list();
    expect(images).toEqual([]);
  });

  it("gives NotFound for an image that does not exist", async () => {
    const err = await ctd.images.get({ name: "berth.invalid/none:latest" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ operation: "Images.Get", backend: "containerd" });
  });

  it("streams server-side: Events.Subscribe can be cancelled", async () => {
    const controller = new AbortController();
    const stream = ctd.events.subscribe({ filters: [] }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    const err = await (async () => {
      for await (const _ of stream) {
        // no events expected
      }
    })().catch((e: unknown) => e);
    expect((err as Error).name).toBe("AbortedError");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("fails with Unavailable within a second when the socket is missing", async () => {
    const gone = new ContainerdClient({ address: "/nonexistent/berth-containerd.sock" });
    const started = Date.now();
    await expect(gone.version.version()).rejects.toBeInstanceOf(UnavailableError);
    expect(Date.now() - started).toBeLessThan(1_500);
    gone.close();
  });
});
