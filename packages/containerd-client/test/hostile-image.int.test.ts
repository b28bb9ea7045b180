// Hostile images and registries against the real containerd: a running container that points its
// /etc/passwd at a host file before an exec names a user, a registry whose image config is not JSON or has
// the wrong shape, and a registry elsewhere redirecting to this host's loopback. Each case checks nothing
// of the host was read or reached and nothing is left in the namespace.
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProtocolError, ValidationError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ContainerdClient, createContainer, hostPlatform, pull, withProcessArgs } from "../src/index.js";
import { EXT, serve } from "./fixture-server.js";
import { destroyNamespace, testClient } from "./helpers.js";

const env = process.env;
const IMAGE = env.BERTH_TEST_IMAGE as string;
const runtime = { root: env.BERTH_RUNC_ROOT as string };
let c: ContainerdClient;
let hostDir: string;

beforeAll(async () => {
  c = testClient();
  hostDir = await mkdtemp(join(tmpdir(), "berth-host-"));
  await pull(c, IMAGE);
}, 90_000);

afterAll(async () => {
  await rm(hostDir, { recursive: true, force: true });
  await destroyNamespace(c);
  expect(await c.namespaceExists()).toBe(false);
  c.close();
});

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A registry serving one image (no layers) whose config is `config`; blob GETs may be redirected. */
function imageRegistry(config: Buffer, redirect?: () => string) {
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha(config),
        size: config.length,
      },
      layers: [],
    }),
  );
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

async function leftovers() {
  const [{ leases }, { images }] = await Promise.all([
    c.leases.list({ filters: [] }),
    c.images.list({ filters: [] }),
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
