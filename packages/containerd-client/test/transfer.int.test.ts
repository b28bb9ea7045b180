// Image import/export against the harness's containerd and dockerd: OCI round trips between namespaces,
// `docker load` of our docker-format export, `docker save` into containerd, and the failure paths
// (tampered bytes, abort) leaving nothing behind.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { AbortedError, DigestMismatchError, ValidationError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { daemonSet } from "../../../test/support/daemon-set.js";
import {
  ContainerdClient,
  exportImage,
  GC_EXPIRE_LABEL,
  getImage,
  type ImportEvent,
  importImage,
  MediaType,
  pull,
  removeNamespace,
  run,
  sha256,
  withProcessArgs,
  writeBlob,
} from "../src/index.js";
import { writeTar } from "../src/transfer/tar.js";

const env = process.env;
const IMAGE = env.BERTH_TEST_IMAGE as string;
const runtime = { root: env.BERTH_RUNC_ROOT as string };
const DOCKER = "/usr/bin/docker";
const LAYOUT_DIR = fileURLToPath(new URL("../../../.runtimes/oci/busybox", import.meta.url));
const id = randomBytes(4).toString("hex");
/** An image made here: busybox plus a layer holding /hello.txt, so docker must load that layer from us. */
const CUSTOM = `127.0.0.1:5000/berth-transfer:${id}`;
const HELLO = `hello from berth ${id}\n`;

const root = ContainerdClient.fromEnv();
const namespaces: ContainerdClient[] = [];
function ns(purpose: string): ContainerdClient {
  const c = root.withNamespace(`berth-transfer-${id}-${purpose}`);
  namespaces.push(c);
  return c;
}
const docker = (...args: string[]) =>
  promisify(execFile)(DOCKER, args, { env: { ...env }, timeout: 60_000, maxBuffer: 64 << 20 });

let src: ContainerdClient;

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

async function contentDigests(c: ContainerdClient): Promise<string[]> {
  const out: string[] = [];
  for await (const r of c.content.list({})) out.push(...r.info.map((i) => i.digest));
  return out.sort();
}

/** Nothing an import could have left: no image, lease, ingest or snapshot beyond `content`. */
async function expectClean(c: ContainerdClient, content: string[]): Promise<void> {
  expect((await c.images.list({})).images.map((i) => i.name)).toEqual([]);
  expect((await c.leases.list({})).leases).toEqual([]);
  expect((await c.content.listStatuses({ filters: [] })).statuses).toEqual([]);
  expect(await contentDigests(c)).toEqual(content);
  const snapshots = [];
  for await (const r of c.snapshots.list({ snapshotter: "overlayfs" })) snapshots.push(...r.info);
  expect(snapshots).toEqual([]);
}

/** Write blobs and an image record under a lease, as a build would. */
async function writeImage(
  c: ContainerdClient,
  name: string,
  blobs: { bytes: Buffer; labels?: Record<string, string> }[],
  target: { mediaType: string; digest: string; size: number },
): Promise<void> {
  const lease = `berth-test-${randomBytes(4).toString("hex")}`;
  await c.leases.create({
    id: lease,
    labels: { [GC_EXPIRE_LABEL]: new Date(Date.now() + 600_000).toISOString() },
  });
  try {
    for (const b of blobs) {
      await writeBlob(c.withLease(lease), async (o) => [b.bytes.subarray(o)], {
        ref: `berth-test-${sha256(b.bytes)}`,
        digest: sha256(b.bytes),
        size: b.bytes.byteLength,
        ...(b.labels ? { labels: b.labels } : {}),
      });
    }
    await c.images.create({ image: { name, target: { ...target, size: BigInt(target.size) }, labels: {} } });
  } finally {
    await c.leases.delete({ id: lease });
  }
}

/** A one-file layer as an uncompressed tar. */
async function layerTar(path: string, data: Uint8Array): Promise<Buffer> {
  return collect(writeTar([{ name: path, data }]));
}

/** busybox + a gzip layer with /hello.txt, recorded as CUSTOM in `c`. */
async function makeCustomImage(c: ContainerdClient): Promise<void> {
  const base = await getImage(c, IMAGE);
  const tar = await layerTar("hello.txt", Buffer.from(HELLO));
  const gz = gzipSync(tar);
  const config = Buffer.from(
    JSON.stringify({
      ...base.config,
      rootfs: { type: "layers", diff_ids: [...(base.config.rootfs?.diff_ids ?? []), sha256(tar)] },
    }),
  );
  const layers = [
    ...base.manifest.layers,
    { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(gz), size: gz.byteLength },
  ];
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha256(config), size: config.byteLength },
      layers,
    }),
  );
  const labels: Record<string, string> = { "containerd.io/gc.ref.content.config": sha256(config) };
  layers.forEach((l, i) => {
    labels[`containerd.io/gc.ref.content.l.${i}`] = l.digest;
  });
  await writeImage(c, CUSTOM, [{ bytes: gz }, { bytes: config }, { bytes: manifest, labels }], {
    mediaType: MediaType.ociManifest,
    digest: sha256(manifest),
    size: manifest.byteLength,
  });
}

/** An OCI layout made by hand (not by containerd, so its blobs are new to the store): one layer of
 *  `size` random bytes, named by a bare tag as many tools write it. */
async function handmadeLayout(size: number): Promise<{ tar: Buffer; layerDigest: string }> {
  const layer = await layerTar("random.bin", randomBytes(size));
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: {},
      rootfs: { type: "layers", diff_ids: [sha256(layer)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha256(config), size: config.byteLength },
      layers: [
        {
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: sha256(layer),
          size: layer.byteLength,
        },
      ],
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: MediaType.ociManifest,
          digest: sha256(manifest),
          size: manifest.byteLength,
          annotations: { "org.opencontainers.image.ref.name": "v1" },
        },
      ],
    }),
  );
  const blob = (b: Buffer) => ({ name: `blobs/sha256/${sha256(b).slice(7)}`, data: b });
  const tar = await collect(
    writeTar([
      blob(layer),
      blob(config),
      blob(manifest),
      { name: "oci-layout", data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
      { name: "index.json", data: index },
    ]),
  );
  return { tar, layerDigest: sha256(layer) };
}

/** Flip one byte in the middle of an archive member. */
function tamper(tar: Buffer, member: string): Buffer {
  const out = Buffer.from(tar);
  const at = out.indexOf(Buffer.from(`${member}\0`));
  expect(at).toBeGreaterThanOrEqual(0);
  const size = Number.parseInt(out.subarray(at + 124, at + 135).toString(), 8);
  const pos = at + 512 + Math.floor(size / 2);
  out[pos] = (out[pos] as number) ^ 0xff;
  return out;
}

/** What an import of `docker save` output points at: Docker 25+ saves an OCI layout. */
const SAVED_MANIFEST = daemonSet.dockerSaveIsOci ? MediaType.ociManifest : MediaType.dockerManifest;

function dockerSave(image: string): Readable {
  const child = spawn(DOCKER, ["save", image], { env: { ...env }, stdio: ["ignore", "pipe", "inherit"] });
  return child.stdout;
}

beforeAll(async () => {
  src = ns("src");
  await pull(src, IMAGE);
  await makeCustomImage(src);
}, 120_000);

afterAll(async () => {
  await docker("rmi", "-f", CUSTOM).catch(() => {});
  // A container's rootfs may still be busy right after run(): try again before giving up.
  for (const c of namespaces) {
    for (let attempt = 0; attempt < 3 && (await c.namespaceExists()); attempt++) {
      await removeNamespace(c).catch(() => new Promise((r) => setTimeout(r, 1000)));
    }
  }
  for (const c of namespaces) expect(await c.namespaceExists()).toBe(false);
  root.close();
}, 120_000);

describe("export and import", () => {
  it("OCI: export from one namespace, import (streamed) into another, run", async () => {
    const dst = ns("oci");
    const events: ImportEvent[] = [];
    const images = await importImage(dst, await exportImage(src, [IMAGE, CUSTOM]), {
      unpack: true,
      onProgress: (e) => events.push(e),
    });
    expect(images.map((i) => i.name).sort()).toEqual([IMAGE, CUSTOM].sort());
    expect(images.every((i) => i.created && i.manifests[0]?.chainIds?.length)).toBe(true);
    expect(events.filter((e) => e.type === "layer-unpacked").length).toBeGreaterThanOrEqual(2);
    const a = await run(dst, IMAGE, { runtime, pull: false, spec: [withProcessArgs("echo", "imported")] });
    expect(a).toMatchObject({ exitCode: 0, stdout: "imported\n" });
    const b = await run(dst, CUSTOM, { runtime, pull: false, spec: [withProcessArgs("cat", "/hello.txt")] });
    expect(b.stdout).toBe(HELLO);
    // Same records and labels as the source: the content survives without the import's lease.
    const custom = await dst.images.get({ name: CUSTOM });
    expect(custom.image?.target?.digest).toBe((await src.images.get({ name: CUSTOM })).image?.target?.digest);
    const info = await dst.content.info({ digest: custom.image?.target?.digest as string });
    expect(Object.keys(info.info?.labels ?? {}).sort()).toEqual([
      "containerd.io/gc.ref.content.config",
      "containerd.io/gc.ref.content.l.0",
      "containerd.io/gc.ref.content.l.1",
    ]);
    expect((await dst.leases.list({})).leases).toEqual([]);
    expect((await src.leases.list({})).leases).toEqual([]);

    // An export read only in part: its lease goes with the stream.
    const partial = await exportImage(src, CUSTOM);
    for await (const _ of partial) break;
    for (let i = 0; i < 20 && (await src.leases.list({})).leases.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await src.leases.list({})).leases).toEqual([]);

    // Importing again re-points the records and writes nothing new.
    const again = await importImage(dst, await exportImage(src, CUSTOM));
    expect(again.map((i) => i.created)).toEqual([false]);
  });

  it("docker format: `docker load` accepts it and the image runs; `docker save` of it imports back", async () => {
    const archive = await collect(await exportImage(src, CUSTOM, { format: "docker" }));
    const loaded = await new Promise<string>((resolve, reject) => {
      const child = spawn(DOCKER, ["load"], { env: { ...env }, stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      child.stderr.on("data", (d) => {
        out += d;
      });
      child.on("error", reject);
      child.on("close", (code) =>
        code === 0 ? resolve(out) : reject(new Error(`docker load: ${code} ${out}`)),
      );
      child.stdin.end(archive);
    });
    expect(loaded).toContain(`Loaded image: ${CUSTOM}`);
    const { stdout } = await docker("run", "--rm", CUSTOM, "cat", "/hello.txt");
    expect(stdout).toBe(HELLO);

    // The same archive (index.json and manifest.json) imports as OCI: the target is the original manifest.
    const both = ns("both");
    const [fromBoth] = await importImage(both, [archive]);
    expect(fromBoth?.target.digest).toBe((await src.images.get({ name: CUSTOM })).image?.target?.digest);

    // And back: what docker saves (the legacy format, config <id>.json and <id>/layer.tar, before
    // Docker 25; an OCI layout with manifest.json since) into containerd.
    const back = ns("back");
    const [image] = await importImage(back, dockerSave(CUSTOM), { unpack: true });
    expect(image?.name).toBe(CUSTOM);
    expect(image?.target.mediaType).toBe(SAVED_MANIFEST);
    const r = await run(back, CUSTOM, { runtime, pull: false, spec: [withProcessArgs("cat", "/hello.txt")] });
    expect(r.stdout).toBe(HELLO);
  });

  it("docker save → importImage → runs in containerd", async () => {
    const dst = ns("save");
    const events: ImportEvent[] = [];
    const images = await importImage(dst, dockerSave(IMAGE), {
      unpack: true,
      onProgress: (e) => events.push(e),
    });
    expect(images.map((i) => i.name)).toEqual([IMAGE]);
    const info = await getImage(dst, IMAGE);
    // The synthesized manifest names the config docker saved, whose digest is the image ID.
    const { stdout: imageId } = await docker("image", "inspect", "-f", "{{.Id}}", IMAGE);
    expect(info.configDigest).toBe(imageId.trim());
    expect(info.record.target?.mediaType).toBe(SAVED_MANIFEST);
    expect(info.manifest.layers.map((l) => l.mediaType)).toEqual([
      daemonSet.dockerSaveIsOci
        ? "application/vnd.oci.image.layer.v1.tar"
        : "application/vnd.docker.image.rootfs.diff.tar",
    ]);
    // docker save's <id>/json and VERSION files were never written to the store.
    const written = events.filter((e) => e.type === "blob-done").map((e) => e.type === "blob-done" && e.path);
    expect(written.some((p) => typeof p === "string" && /\/(json|VERSION)$/.test(p))).toBe(false);
    const r = await run(dst, IMAGE, { runtime, pull: false, spec: [withProcessArgs("echo", "from docker")] });
    expect(r.stdout).toBe("from docker\n");
  });

  it("an OCI layout directory; bare-tag names need baseName", async () => {
    const dst = ns("dir");
    await expect(importImage(dst, LAYOUT_DIR)).rejects.toBeInstanceOf(ValidationError);
    await expectClean(dst, []);
    const images = await importImage(dst, LAYOUT_DIR, { baseName: "berth.test/layout" });
    expect(images.map((i) => i.name).sort()).toEqual(["berth.test/layout:latest", "berth.test/layout:pause"]);
  });
});

describe("failures leave nothing behind", () => {
  it("a tampered blob (OCI archive): DigestMismatchError, the store as it was", async () => {
    const dst = ns("tamper");
    await importImage(dst, await exportImage(src, IMAGE));
    const before = await contentDigests(dst);
    const tar = await collect(await exportImage(src, CUSTOM));
    const custom = await getImage(src, CUSTOM);
    const layer = custom.manifest.layers[1]?.digest as string;
    // The layer is in the daemon's shared store (from `src`), so the daemon skips the bytes: we still check.
    const err = await importImage(dst, [tamper(tar, `blobs/sha256/${layer.slice(7)}`)], {
      unpack: true,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    await expect(dst.images.get({ name: CUSTOM })).rejects.toThrow();
    expect((await dst.images.list({})).images.map((i) => i.name)).toEqual([IMAGE]);
    expect((await dst.leases.list({})).leases).toEqual([]);
    expect((await dst.content.listStatuses({ filters: [] })).statuses).toEqual([]);
    expect(await contentDigests(dst)).toEqual(before);

    // A layer new to the daemon, and a config: the same.
    const fresh = ns("tamper2");
    const made = await handmadeLayout(300_000);
    await expect(
      importImage(fresh, [tamper(made.tar, `blobs/sha256/${made.layerDigest.slice(7)}`)], { baseName: "x" }),
    ).rejects.toBeInstanceOf(DigestMismatchError);
    await expectClean(fresh, []);
  });

  it("a tampered docker save layer: DigestMismatchError, nothing left", async () => {
    const dst = ns("tamper-docker");
    const tar = await collect(dockerSave(IMAGE));
    // manifest.json names the layer's member: <id>/layer.tar, or blobs/sha256/<digest> since Docker 25
    const layerPath = /"Layers":\["([^"]+)"/.exec(tar.toString("latin1"))?.[1] as string;
    const err = await importImage(dst, [tamper(tar, layerPath)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    await expectClean(dst, []);
  });

  it("an aborted import: AbortedError, no image, lease, ingest or content", async () => {
    const dst = ns("abort");
    const { tar } = await handmadeLayout(3 * 1024 * 1024);
    const ac = new AbortController();
    const seen: ImportEvent[] = [];
    const err = await importImage(dst, [tar.subarray(0, 1 << 20), tar.subarray(1 << 20)], {
      baseName: "berth.test/abort",
      signal: ac.signal,
      onProgress: (e) => {
        seen.push(e);
        if (e.type === "blob-progress") ac.abort();
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(seen.some((e) => e.type === "blob-progress")).toBe(true);
    await expectClean(dst, []);

    // A source that stalls: the abort does not wait for its next bytes.
    const stalled = ns("abort-stall");
    const ac3 = new AbortController();
    const started = Date.now();
    setTimeout(() => ac3.abort(), 300);
    const err3 = await importImage(
      stalled,
      (async function* () {
        yield tar.subarray(0, 1 << 20);
        await new Promise(() => {});
      })(),
      { baseName: "berth.test/stall", signal: ac3.signal },
    ).catch((e: unknown) => e);
    expect(err3).toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(10_000);
    await expectClean(stalled, []);

    // Aborted late, when the layers are unpacked and the first record is written: all of it is undone.
    const dst2 = ns("abort2");
    const ac2 = new AbortController();
    const err2 = await importImage(dst2, await exportImage(src, [IMAGE, CUSTOM]), {
      unpack: true,
      signal: ac2.signal,
      onProgress: (e) => {
        if (e.type === "image") ac2.abort();
      },
    }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(AbortedError);
    await expectClean(dst2, []);
  });
});
