// One integrity contract on every backend, looked at below the Runtime: each client's own pull verb
// (docker-client's pull on Docker and Podman, containerd-client's pull, crio-client's pullImage on
// containerd's CRI) fetches a fresh image whose layer a hostile registry serves with one byte flipped,
// size, headers and claimed digest unchanged: in the gzip header (the layer still decompresses; only the
// digest tells) and in the middle of the deflate data. Each must be a DigestMismatchError naming the
// layer's digest, and each daemon must be left with no image, no blob of it and no ingest. Each case prints
// one `registry-trust:` line with what the daemon said.
import { randomBytes } from "node:crypto";
import {
  ContainerdClient,
  collectGarbage,
  pull as containerdPull,
  hasBlob,
  removeNamespace,
} from "@berth/containerd-client";
import { CriClient } from "@berth/crio-client";
import { DockerClient, pull as dockerPull } from "@berth/docker-client";
import { DigestMismatchError, NotFoundError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FreshImage,
  TamperingRegistry,
  type TamperMode,
  tamperedAtRest,
} from "../support/tampering-registry.js";

const env = process.env;
const MODES: TamperMode[] = ["gzip-header", "data"];
let proxy: TamperingRegistry;
/** Podman speaks plain HTTP only to the registries its registries.conf lists (see tampering-registry.ts). */
let podmanProxy: TamperingRegistry | undefined;

beforeAll(async () => {
  proxy = await TamperingRegistry.start(env.BERTH_REGISTRY ?? "");
  if (env.BERTH_HOSTILE_REGISTRY) {
    podmanProxy = await TamperingRegistry.start(
      env.BERTH_REGISTRY ?? "",
      Number(env.BERTH_HOSTILE_REGISTRY.split(":")[1]),
    );
  }
});
afterAll(async () => {
  await proxy?.close();
  await podmanProxy?.close();
});

/** Why a pull failed: the error, checked to be the contract's, and the daemon's words for the report. */
async function refused(pulling: Promise<unknown>, img: FreshImage): Promise<string> {
  const err = await pulling.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DigestMismatchError);
  expect((err as DigestMismatchError).expected).toBe(img.layerDigest);
  return ((err as DigestMismatchError).daemonMessage ?? (err as Error).message).slice(0, 160);
}

const short = (d: string) => d.slice(0, 19);

describe("a tampered layer on every backend", () => {
  for (const [backend, host] of [
    ["docker", env.DOCKER_HOST],
    ["podman", env.PODMAN_HOST],
  ] as const) {
    it(`${backend}: DigestMismatchError, no image left`, async () => {
      const docker = new DockerClient({ host: host ?? "", backend });
      try {
        for (const mode of MODES) {
          const reg = backend === "podman" ? podmanProxy : proxy;
          // Without a proxy Podman can reach, the registry's stored copy is tampered with instead.
          const img = reg ? await reg.freshImage({ tamper: mode }) : await tamperedAtRest(mode);
          const said = await refused(dockerPull(docker, img.image, { auth: false }), img);
          await expect(docker.images.inspect({ name: img.image })).rejects.toBeInstanceOf(NotFoundError);
          const repo = img.image.slice(0, img.image.lastIndexOf(":"));
          const listed = await docker.images.list({ filters: { reference: [repo] } });
          expect(listed).toEqual([]);
          console.log(
            `registry-trust: ${backend} tampered layer (${mode}, ${reg ? "proxy" : "at rest"}): DigestMismatchError ` +
              `for ${short(img.layerDigest)}, no image left; the daemon said: ${said}`,
          );
        }
      } finally {
        await docker.close();
      }
    });
  }

  it("containerd (berth's pull): DigestMismatchError, no image, blob, lease or ingest left", async () => {
    const client = ContainerdClient.fromEnv().withNamespace(
      `berth-hostile-${randomBytes(4).toString("hex")}`,
    );
    try {
      for (const mode of MODES) {
        const img = await proxy.freshImage({ tamper: mode });
        const said = await refused(containerdPull(client, img.image), img);
        await collectGarbage(client);
        expect(await leftovers(client, img)).toEqual({ blobs: 0, ingests: 0, image: 0, leases: 0 });
        console.log(
          `registry-trust: containerd tampered layer (${mode}): DigestMismatchError for ${short(img.layerDigest)}, ` +
            `no image, blob, lease or ingest left; berth said: ${said}`,
        );
      }
    } finally {
      await removeNamespace(client);
      client.close();
    }
  });

  it("cri (containerd's CRI): DigestMismatchError, no image, blob or ingest left in k8s.io", async () => {
    const cri = CriClient.fromEnv();
    const k8s = ContainerdClient.fromEnv().withNamespace("k8s.io");
    try {
      for (const mode of MODES) {
        const img = await proxy.freshImage({ tamper: mode });
        const said = await refused(cri.pullImage(img.image, { auth: false }), img);
        expect((await cri.imageStatus(img.image)).image).toBeUndefined();
        await collectGarbage(k8s);
        const { leases: _, ...left } = await leftovers(k8s, img);
        expect(left).toEqual({ blobs: 0, ingests: 0, image: 0 });
        console.log(
          `registry-trust: cri tampered layer (${mode}): DigestMismatchError for ${short(img.layerDigest)}, ` +
            `no image, blob or ingest left; the daemon said: ${said}`,
        );
      }
    } finally {
      cri.close();
      k8s.close();
    }
  });
});

/** What of `img` a containerd namespace holds: its blobs, ingests of them, its image record, leases. */
async function leftovers(client: ContainerdClient, img: FreshImage) {
  const digests = [img.layerDigest, img.configDigest, img.manifestDigest];
  let blobs = 0;
  for (const d of digests) if (await hasBlob(client, d)) blobs++;
  const { statuses } = await client.content.listStatuses({ filters: [] });
  const ingests = statuses.filter((s) => digests.some((d) => s.ref.includes(d) || s.expected === d)).length;
  const image = await client.images.get({ name: img.image }).then(
    () => 1,
    (err: unknown) => {
      if (err instanceof NotFoundError) return 0;
      throw err;
    },
  );
  const leases = (await client.leases.list({})).leases.length;
  return { blobs, ingests, image, leases };
}
