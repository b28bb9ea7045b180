// Hostile images and registries against the real containerd: a running container that points its
// /etc/passwd at a host file before an exec names a user, a registry whose image config is not JSON or has
// the wrong shape, a registry elsewhere redirecting to this host's loopback, and archives or layout
// directories with links out, link loops, oversized or misshapen documents. Each case checks nothing of
// the host was read or reached and nothing is left in the namespace.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ProtocolError, ValidationError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ContainerdClient,
  createContainer,
  hostPlatform,
  importImage,
  pull,
  withProcessArgs,
} from "../src/index.js";
import { writeTar } from "../src/transfer/tar.js";
import { EXT, serve } from "./fixture-server.js";
import { destroyNamespace, testClient } from "./helpers.js";

const LAYOUT_DIR = fileURLToPath(new URL("../../../.runtimes/oci/busybox", import.meta.url));
const env = process.env;
const IMAGE = env.BERTH_TEST_IMAGE as string;
const runtime = { root: env.BERTH_RUNC_ROOT as string };
let c: ContainerdClient;
/** A namespace that holds none of the layout's blobs, so an import must find each in the archive. */
let imp: ContainerdClient;
let hostDir: string;

beforeAll(async () => {
  c = testClient();
  imp = testClient();
  hostDir = await mkdtemp(join(tmpdir(), "berth-host-"));
  await pull(c, IMAGE);
}, 90_000);

afterAll(async () => {
  await rm(hostDir, { recursive: true, force: true });
  for (const client of [c, imp]) {
    await destroyNamespace(client);
    expect(await client.namespaceExists()).toBe(false);
    client.close();
  }
});

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** An image manifest (no layers) naming `config`. */
const manifestOf = (config: Buffer, extra: Record<string, unknown> = {}) =>
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha(config),
        size: config.length,
      },
      layers: [],
      ...extra,
    }),
  );

/** A registry serving one image (no layers) whose config is `config`; blob GETs may be redirected. */
function imageRegistry(config: Buffer, redirect?: () => string) {
  const manifest = manifestOf(config);
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.includes("/manifests/")) {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" }).end(manifest);
    } else if (req.url?.includes("/blobs/") && redirect) {
      res.writeHead(307, { location: redirect() }).end();
    } else if (req.url?.includes("/blobs/")) {
      res.writeHead(200).end(config);
    } else res.writeHead(404).end();
  };
}

async function leftovers(client = c) {
  const [{ leases }, { images }] = await Promise.all([
    client.leases.list({ filters: [] }),
    client.images.list({ filters: [] }),
  ]);
  return { leases: leases.length, images: images.map((i) => i.name).filter((n) => n !== IMAGE) };
}

describe("hostile image: rootfs files", () => {
  it("exec as a user name: a container's /etc links are resolved inside the container, never on the host", async () => {
    const hostGroup = join(hostDir, "group");
    await writeFile(hostGroup, "berth-host-only:x:4243:nobody\n");
    const id = `hostile-passwd-${randomBytes(3).toString("hex")}`;
    // /etc/passwd: an absolute link to a file of the container (not on the host); /etc/group: an
    // absolute link to a host path that the container does not have.
    const script = `cp /etc/passwd /etc/passwd.real && ln -sf /etc/passwd.real /etc/passwd && ln -sf ${hostGroup} /etc/group && touch /tmp/ready && sleep 300`;
    const ctr = await createContainer(c, IMAGE, id, { runtime, spec: [withProcessArgs("sh", "-c", script)] });
    const idOf = async (task: Awaited<ReturnType<typeof ctr.newTask>>, user: string) => {
      const p = await task.exec(["id"], { user });
      const out = p.output();
      await p.start();
      await p.wait();
      await p.delete();
      return (await out).stdout;
    };
    try {
      const task = await ctr.newTask();
      await task.start();
      for (;;) {
        const p = await task.exec(["test", "-f", "/tmp/ready"]);
        await p.start();
        const { exitCode } = await p.wait();
        await p.delete();
        if (exitCode === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // Read through the container's link: the container's own passwd.
      expect(await idOf(task, "nobody")).toMatch(/^uid=65534/);
      // The host's file names the group; the container's /etc/group (a dangling link inside it) does not.
      const err = await idOf(task, "nobody:berth-host-only").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(/not in the image's \/etc\/group/);
      await task.kill("SIGKILL");
      await task.wait();
      await task.delete();
    } finally {
      await ctr.delete();
    }
  });
});

describe("hostile image: registry documents", () => {
  const platform = hostPlatform();
  const cases: Array<[string, string]> = [
    ["a config that is not JSON", "not json {"],
    ["a config that is null", "null"],
    ["diff_ids that are not a list", JSON.stringify({ rootfs: { type: "layers", diff_ids: 5 } })],
    [
      "a Cmd that is a number",
      JSON.stringify({ config: { Cmd: 5 }, rootfs: { type: "layers", diff_ids: [] } }),
    ],
  ];
  for (const [name, body] of cases) {
    it(`${name}: ProtocolError, nothing left`, async () => {
      const reg = await serve(imageRegistry(Buffer.from(body)));
      const err = await pull(c, `${reg.host}/hostile/config:${randomBytes(3).toString("hex")}`, {
        platform,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProtocolError);
      expect(await leftovers()).toEqual({ leases: 0, images: [] });
    });
  }

  it.runIf(EXT)(
    "a registry elsewhere redirecting to loopback is refused unless allowLocalRedirects",
    async () => {
      const config = Buffer.from(JSON.stringify({ os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
      const store = await serve((_q, res) => res.writeHead(200).end(config));
      const reg = await serve(
        imageRegistry(config, () => `${store.origin}/bucket`),
        EXT,
      );
      const name = `${reg.host}/hostile/redirect:v1`;
      const options = { platform, insecureRegistries: [reg.host], unpack: false };
      const err = await pull(c, name, options).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect(store.requests).toEqual([]);
      expect(await leftovers()).toEqual({ leases: 0, images: [] });
      const image = await pull(c, name, { ...options, allowLocalRedirects: true });
      expect(image.configDigest).toBe(sha(config));
      expect(store.requests.length).toBe(1);
      await c.images.delete({ name: image.name, sync: true });
    },
  );
});

describe("hostile image: archives and layout directories", () => {
  const exec = promisify(execFile);
  /** A copy of the test layout to spoil. */
  async function layoutCopy(): Promise<{ dir: string; index: { manifests: { digest: string }[] } }> {
    const dir = join(await mkdtemp(join(tmpdir(), "berth-layout-")), "layout");
    await exec("cp", ["-r", LAYOUT_DIR, dir]);
    return { dir, index: JSON.parse(await readFile(join(dir, "index.json"), "utf8")) };
  }
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => e,
    );

  it("a layout directory whose index.json links to a host file: the host file is not read", async () => {
    const { dir } = await layoutCopy();
    const outside = join(hostDir, "index.json");
    await rename(join(dir, "index.json"), outside);
    await symlink(outside, join(dir, "index.json"));
    const err = await failure(importImage(imp, dir, { baseName: "berth.test/hostile" }));
    expect(err).toBeInstanceOf(ValidationError);
    expect(await leftovers(imp)).toEqual({ leases: 0, images: [] });
    await rm(dir, { recursive: true, force: true });
  });

  it("a layout directory whose manifest blob is a symlink loop: ValidationError, not ELOOP", async () => {
    const { dir, index } = await layoutCopy();
    const blob = join(dir, "blobs/sha256", (index.manifests[0]?.digest ?? "").slice(7));
    await rm(blob);
    await symlink("loop", blob);
    await symlink(blob, join(dir, "blobs/sha256/loop"));
    const err = await failure(importImage(imp, dir, { baseName: "berth.test/hostile" }));
    expect(err).toBeInstanceOf(ValidationError);
    expect(await leftovers(imp)).toEqual({ leases: 0, images: [] });
    await rm(dir, { recursive: true, force: true });
  });

  /** An OCI layout tar: `manifest` (and a config) under index.json, named hostile:v1. */
  async function layoutTar(manifest: Buffer, config: Buffer, root?: { mediaType: string; bytes: Buffer }) {
    const top = root ?? { mediaType: "application/vnd.oci.image.manifest.v1+json", bytes: manifest };
    const index = {
      schemaVersion: 2,
      manifests: [
        {
          mediaType: top.mediaType,
          digest: sha(top.bytes),
          size: top.bytes.length,
          annotations: { "io.containerd.image.name": "berth.test/hostile:v1" },
        },
      ],
    };
    const blobs = [manifest, config, ...(root ? [root.bytes] : [])];
    const parts: Uint8Array[] = [];
    for await (const p of writeTar([
      { name: "oci-layout", data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
      { name: "index.json", data: Buffer.from(JSON.stringify(index)) },
      ...blobs.map((b) => ({ name: `blobs/sha256/${sha(b).slice(7)}`, data: b })),
    ]))
      parts.push(p);
    return Buffer.concat(parts);
  }
  const config = Buffer.from(
    JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: [] } }),
  );

  it("an archive's 5 MiB manifest is refused (it would be read whole)", async () => {
    const big = manifestOf(config, { annotations: { pad: "x".repeat(5 * 1024 * 1024) } });
    const err = await failure(importImage(imp, [await layoutTar(big, config)]));
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toMatch(/more than 4194304/);
    expect(await leftovers(imp)).toEqual({ leases: 0, images: [] });
  });

  it("an archive's index whose entry has a platform without os: ValidationError, not a TypeError", async () => {
    const manifest = manifestOf(config);
    const inner = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [
          {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: sha(manifest),
            size: manifest.length,
            platform: { architecture: "amd64" },
          },
        ],
      }),
    );
    const tar = await layoutTar(manifest, config, {
      mediaType: "application/vnd.oci.image.index.v1+json",
      bytes: inner,
    });
    const err = await failure(importImage(imp, [tar], { platform: { os: "linux", architecture: "amd64" } }));
    expect(err).toBeInstanceOf(ValidationError);
    expect(await leftovers(imp)).toEqual({ leases: 0, images: [] });
  });

  it("an archive's config of the wrong shape: ValidationError", async () => {
    const bad = Buffer.from(JSON.stringify({ rootfs: { type: "layers", diff_ids: "none" } }));
    const err = await failure(importImage(imp, [await layoutTar(manifestOf(bad), bad)]));
    expect(err).toBeInstanceOf(ValidationError);
    expect(await leftovers(imp)).toEqual({ leases: 0, images: [] });
  });

  it("an archive of more entries than any image has is refused (each would be held in memory)", async () => {
    /** A ustar symlink header. */
    const link = (name: string) => {
      const h = Buffer.alloc(512);
      h.write(name, 0);
      h.write("0000777\0", 100);
      h.write("0000000\0", 108);
      h.write("0000000\0", 116);
      h.write("00000000000\0", 124);
      h.write("00000000000\0", 136);
      h.write("2", 156);
      h.write("target", 157);
      h.write("ustar\0", 257);
      h.write("00", 263);
      h.write("        ", 148);
      let sum = 0;
      for (const b of h) sum += b;
      h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
      return h;
    };
    let sent = 0;
    async function* links() {
      for (let batch = 0; batch < 100; batch++) {
        yield Buffer.concat(Array.from({ length: 1000 }, (_, i) => link(`l/${batch}/${i}`)));
        sent += 1000;
      }
      yield Buffer.alloc(1024);
    }
    const err = await failure(importImage(imp, links()));
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toMatch(/entries/);
    expect(sent).toBeLessThan(100_000);
    expect(await leftovers(imp)).toEqual({ leases: 0, images: [] });
  });
});
