// The pull containerd does itself (via: "transfer", containerd's Transfer service) against the real
// daemon: on containerd 2.x it pulls, unpacks and records what the client-side pull does, with the same
// progress, credentials, errors and clean-up; on containerd 1.6 (no transfer service) it is refused.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortedError,
  DigestMismatchError,
  NotFoundError,
  type PullProgress,
  parseImageRef,
  UnauthorizedError,
  UnsupportedError,
  ValidationError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSlowRegistry } from "../../../test/faults/slow-registry.js";
import { daemonSet } from "../../../test/support/daemon-set.js";
import { TamperingRegistry } from "../../../test/support/tampering-registry.js";
import {
  type ContainerdClient,
  ContainerdRuntime,
  getImage,
  hasTransferService,
  type PullEvent,
  pull,
  pullProgress,
  run,
  withProcessArgs,
} from "../src/index.js";
import { destroyNamespace, pushTestImages, testClient } from "./helpers.js";

const env = process.env;
const REG = env.BERTH_REGISTRY as string;
const IMAGE = env.BERTH_TEST_IMAGE as string;
const AUTH_IMAGE = `${env.BERTH_AUTH_REGISTRY}/busybox:latest`;
const authCredentials = {
  serverAddress: env.BERTH_AUTH_REGISTRY as string,
  username: env.BERTH_AUTH_REGISTRY_USER as string,
  password: env.BERTH_AUTH_REGISTRY_PASSWORD as string,
};
const hostsDir = env.BERTH_CONTAINERD_HOSTS_DIR as string;
const runtime = { root: env.BERTH_RUNC_ROOT as string };
const via = "transfer" as const;

let c: ContainerdClient;

beforeAll(() => {
  c = testClient();
});

afterAll(async () => {
  await destroyNamespace(c);
  c.close();
});

async function collect(
  reference: string,
  options: Parameters<typeof pullProgress>[2] = {},
): Promise<{ events: PullEvent[]; error: unknown }> {
  const events: PullEvent[] = [];
  try {
    for await (const e of pullProgress(c, reference, { via, hostsDir, ...options })) events.push(e);
    return { events, error: undefined };
  } catch (error) {
    return { events, error };
  }
}

/** What a pull may leave in the test's namespace: leases, ingests, the image record, the blobs given. */
async function leftovers(name: string, digests: string[]) {
  const leases = (await c.leases.list({})).leases.length;
  const ingests = (await c.content.listStatuses({ filters: [] })).statuses.length;
  const image = await c.images.get({ name }).then(
    () => 1,
    () => 0,
  );
  let blobs = 0;
  for (const digest of digests) {
    blobs += await c.content.info({ digest }).then(
      () => 1,
      () => 0,
    );
  }
  return { leases, ingests, image, blobs };
}
const nothingLeft = { leases: 0, ingests: 0, image: 0, blobs: 0 };

/** The namespace's overlayfs snapshots, by key. */
async function snapshots(): Promise<string[]> {
  const keys: string[] = [];
  for await (const r of c.snapshots.list({ snapshotter: "overlayfs", filters: [] }))
    keys.push(...r.info.map((i) => i.name));
  return keys.sort();
}

describe.skipIf(!daemonSet.containerdTransfer)("pull via containerd's Transfer service", () => {
  let amd64Digest: string;
  let tag: string;

  beforeAll(async () => {
    tag = `x${Date.now().toString(36)}`;
    amd64Digest = await pushTestImages(REG, tag);
  }, 90_000);

  it("the daemon has the transfer service", async () => {
    expect(await hasTransferService(c)).toBe(true);
  });

  it("pulls and unpacks the test image, named as the client-side pull names it, with progress; it runs", async () => {
    const { events, error } = await collect(IMAGE);
    expect(error).toBeUndefined();
    const types = new Set(events.map((e) => e.type));
    expect([...types]).toEqual(expect.arrayContaining(["lease", "resolved", "layer-unpacked", "done"]));
    // Every blob ends once: downloaded or already there (another namespace may share the content).
    const ended = events.filter((e) => e.type === "blob-done" || e.type === "blob-exists");
    expect(ended.map((e) => e.kind).sort()).toEqual(["config", "layer", "manifest"]);
    const done = events.at(-1);
    if (done?.type !== "done") throw new Error("the last event is not done");
    expect(done.image.name).toBe(parseImageRef(IMAGE).toString());
    const resolved = events.find((e) => e.type === "resolved");
    expect(resolved?.type === "resolved" && resolved.digest).toBe(done.image.target.digest);

    // The same record and snapshot the client-side pull makes.
    const info = await getImage(c, IMAGE);
    expect(info.name).toBe(done.image.name);
    expect(info.chainIds).toEqual(done.image.chainIds);
    expect(info.configDigest).toBe(done.image.configDigest);
    const top = info.chainIds.at(-1) as string;
    await expect(c.snapshots.stat({ snapshotter: "overlayfs", key: top })).resolves.toBeTruthy();
    expect((await c.leases.list({})).leases).toEqual([]);

    const r = await run(c, IMAGE, { pull: false, runtime, spec: [withProcessArgs("echo", "transferred")] });
    expect(r).toMatchObject({ exitCode: 0, stdout: "transferred\n" });

    // Again: everything is there already.
    const again = await collect(IMAGE);
    expect(again.error).toBeUndefined();
    expect(again.events.some((e) => e.type === "blob-exists")).toBe(true);
  });

  it("selects the platform from a multi-platform index", async () => {
    const name = `${REG}/multi:${tag}`;
    const img = await pull(c, name, { via, hostsDir, platform: { os: "linux", architecture: "amd64" } });
    expect(img.target.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(img.manifestDigest).toBe(amd64Digest);
    const arm = await pull(c, name, {
      via,
      hostsDir,
      name: `${name}-arm64`,
      unpack: false,
      platform: { os: "linux", architecture: "arm64" },
    });
    expect(arm.manifestDigest).not.toBe(amd64Digest);
    const unpacked = await pull(c, name, {
      via,
      hostsDir,
      name: `${name}-arm64-unpacked`,
      platform: { os: "linux", architecture: "arm64", variant: "v8" },
    });
    expect(unpacked.manifestDigest).toBe(arm.manifestDigest);
    const top = unpacked.chainIds.at(-1) as string;
    await expect(c.snapshots.stat({ snapshotter: "overlayfs", key: top })).resolves.toBeTruthy();
    // containerd unpacks only into the snapshotters its transfer plugin's unpack_config lists (by default
    // its default one): asked for another, it refuses.
    const refused = await pull(c, IMAGE, { via, name: `${IMAGE}-native`, snapshotter: "native" }).catch(
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(UnsupportedError);
    expect((refused as Error).message).toMatch(/does not unpack into native for linux\/amd64/);
    expect(await leftovers(`${IMAGE}-native`, [])).toEqual(nothingLeft);
  });

  it("credentials: UnauthorizedError without them, a pull with them, refused for another registry", async () => {
    const none = await pull(c, AUTH_IMAGE, { via, hostsDir, credentials: null }).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(UnauthorizedError);
    const wrong = await pull(c, AUTH_IMAGE, {
      via,
      hostsDir,
      credentials: { ...authCredentials, password: "wrong" },
    }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(UnauthorizedError);
    // Given for another registry: refused before the daemon is asked anything.
    const other = await pull(c, AUTH_IMAGE, {
      via,
      credentials: { ...authCredentials, serverAddress: REG },
    }).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(UnauthorizedError);
    expect((other as Error).message).toMatch(/not sent to another registry/);
    const ok = await pull(c, AUTH_IMAGE, { via, hostsDir, credentials: authCredentials });
    expect(ok.chainIds.length).toBe(1);
    // A credential callback is asked for the image's registry.
    const asked: string[] = [];
    await c.images.delete({ name: ok.name, sync: true });
    await pull(c, AUTH_IMAGE, {
      via,
      credentials: async (registry) => {
        asked.push(registry);
        return authCredentials;
      },
    });
    expect(asked).toEqual([env.BERTH_AUTH_REGISTRY]);
  });

  it("credentials go only to the registry they name: a mirror from hosts.toml gets none", async () => {
    const mirror = await TamperingRegistry.start(REG);
    const dir = await mkdtemp(join(tmpdir(), "berth-hosts-"));
    try {
      const img = await mirror.freshImage({ tamper: false, private: true });
      // The image named at an address nobody serves (the discard port), which hosts.toml sends to the
      // mirror first; the mirror asks for credentials.
      const named = `127.0.0.1:9/${img.image.slice(mirror.host.length + 1)}`;
      await mkdir(join(dir, "127.0.0.1:9"));
      await writeFile(
        join(dir, "127.0.0.1:9", "hosts.toml"),
        `server = "http://127.0.0.1:9"\n\n[host."http://${mirror.host}"]\n  capabilities = ["pull", "resolve"]\n`,
      );
      const err = await pull(c, named, {
        via,
        hostsDir: dir,
        credentials: { serverAddress: "127.0.0.1:9", username: "u", password: "secret-for-9" },
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnauthorizedError);
      expect(mirror.seen.length).toBeGreaterThan(0);
      expect(mirror.authorizations).toEqual([]);
    } finally {
      await mirror.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("an unknown image: NotFoundError, nothing left", async () => {
    const name = `${REG}/does-not-exist:latest`;
    const err = await pull(c, name, { via, hostsDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(await leftovers(name, [])).toEqual(nothingLeft);
  });

  it("aborted mid-pull: AbortedError, and no lease, ingest, blob, snapshot or image left", async () => {
    // 4 MiB at 640 KiB/s: containerd reports the layer's ingest (it polls it every 300 ms, and writes it a
    // MiB at a time) long before it ends.
    const slow = await startSlowRegistry({ layerBytes: 4 * 1024 * 1024, rate: 64 * 1024 });
    try {
      const before = await snapshots();
      const ac = new AbortController();
      const events: PullEvent[] = [];
      const error = await (async () => {
        for await (const e of pullProgress(c, slow.image, { via, hostsDir, signal: ac.signal })) {
          events.push(e);
          if (e.type === "blob-progress" && e.kind === "layer" && e.offset > 0) ac.abort();
        }
      })().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AbortedError);
      const partial = events.find((e) => e.type === "blob-progress");
      expect(partial?.type === "blob-progress" && partial.offset).toBeLessThan(slow.layerSize);
      expect(events.some((e) => e.type === "done")).toBe(false);
      const seen = new Set(events.flatMap((e) => ("digest" in e ? [e.digest] : [])));
      expect(seen.size).toBe(3);
      expect(await leftovers(slow.image, [...seen])).toEqual(nothingLeft);
      expect(await snapshots()).toEqual(before);
    } finally {
      slow.rate = 0;
      await slow.close();
    }
  });

  it("a tampered layer: DigestMismatchError naming the layer, nothing left", async () => {
    const hostile = await TamperingRegistry.start(REG);
    try {
      const img = await hostile.freshImage({ tamper: "gzip-header" });
      const { events, error } = await collect(img.image);
      expect(error).toBeInstanceOf(DigestMismatchError);
      expect((error as DigestMismatchError).expected).toBe(img.layerDigest);
      expect(hostile.flipped).toBeGreaterThan(0);
      expect(events.some((e) => e.type === "done")).toBe(false);
      const digests = [img.layerDigest, img.configDigest, img.manifestDigest];
      expect(await leftovers(img.image, digests)).toEqual(nothingLeft);
    } finally {
      await hostile.close();
    }
  });

  it("refuses what only the client-side pull does, and an unknown via", async () => {
    await expect(pull(c, IMAGE, { via, maxConcurrentDownloads: 2 })).rejects.toBeInstanceOf(ValidationError);
    await expect(pull(c, IMAGE, { via, skipTlsVerify: ["x"] })).rejects.toBeInstanceOf(ValidationError);
    await expect(pull(c, IMAGE, { via: "daemon" as unknown as "transfer" })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it("ContainerdRuntime.pull({ via: 'transfer' }) reports runtime-core's progress", async () => {
    const other = testClient();
    const logDir = await mkdtemp(join(tmpdir(), "berth-transfer-logs-"));
    const rt = new ContainerdRuntime(other, { runtime, logDir });
    try {
      const progress: PullProgress[] = [];
      await rt.pull(IMAGE, { via, onProgress: (p) => progress.push(p) });
      const statuses = new Set(progress.map((p) => p.status));
      expect([...statuses]).toEqual(expect.arrayContaining(["resolved", "unpacked", "pulled"]));
      expect(statuses.has("downloaded") || statuses.has("exists")).toBe(true);
      expect(progress.at(-1)).toEqual({ id: IMAGE, status: "pulled" });
      const r = await rt.run({ image: IMAGE, command: ["echo", "ok"] }, { pull: false });
      expect(r.exitCode).toBe(0);
    } finally {
      await destroyNamespace(other);
      other.close();
      await rm(logDir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(daemonSet.containerdTransfer)("pull via transfer on a containerd without the service", () => {
  it("is an UnsupportedError saying so; nothing was created", async () => {
    expect(await hasTransferService(c)).toBe(false);
    const err = await pull(c, IMAGE, { via }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toMatch(/has no transfer service/);
    expect((await c.leases.list({})).leases).toEqual([]);
  });
});
