import { existsSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { AbortedError, DigestMismatchError, NotFoundError, UnauthorizedError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ContainerdClient,
  createContainer,
  getImage,
  type PullEvent,
  pull,
  pullProgress,
  RegistryClient,
  run,
  subscribeEvents,
  withHostDevices,
  withPrivileged,
  withProcessArgs,
} from "../src/index.js";
import { destroyNamespace, pushTestImages, testClient } from "./helpers.js";

const env = process.env;
const REG = env.BERTH_REGISTRY as string;
const IMAGE = env.BERTH_TEST_IMAGE as string;
const runtime = { root: env.BERTH_RUNC_ROOT as string };
const tag = `t${Date.now().toString(36)}`;

let c: ContainerdClient;
let amd64Digest: string;

beforeAll(async () => {
  c = testClient();
  amd64Digest = await pushTestImages(REG, tag);
}, 90_000);

afterAll(async () => {
  await destroyNamespace(c);
  expect(await c.namespaceExists()).toBe(false);
  c.close();
});

describe("pull", () => {
  it("pulls the test image with progress and leaves no lease", async () => {
    const events: PullEvent[] = [];
    for await (const e of pullProgress(c, IMAGE)) events.push(e);
    const done = events.find((e) => e.type === "done");
    expect(done?.type === "done" && done.image.chainIds.length).toBe(1);
    expect(events.filter((e) => e.type === "blob-done").map((e) => e.type === "blob-done" && e.kind)).toEqual(
      ["config", "layer", "manifest"],
    );
    const { image } = await c.images.get({ name: IMAGE });
    expect(image?.target?.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    const manifest = await c.content.info({ digest: image?.target?.digest ?? "" });
    expect(manifest.info?.labels["containerd.io/gc.ref.content.l.0"]).toMatch(/^sha256:/);
    expect((await c.leases.list({})).leases).toEqual([]);
    const info = await getImage(c, IMAGE);
    await expect(
      c.snapshots.stat({ snapshotter: "overlayfs", key: info.chainIds[0] as string }),
    ).resolves.toBeTruthy();
  });

  it("picks linux/amd64 from a multi-platform index", async () => {
    const img = await pull(c, `${REG}/multi:${tag}`, { platform: { os: "linux", architecture: "amd64" } });
    expect(img.target.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(img.manifestDigest).toBe(amd64Digest);
    const index = await c.content.info({ digest: img.target.digest });
    expect(Object.values(index.info?.labels ?? {})).toContain(amd64Digest);
    const arm = await new RegistryClient().resolve(`${REG}/multi:${tag}`, {
      platform: { os: "linux", architecture: "arm64" },
    });
    expect(arm.manifest.descriptor.digest).not.toBe(amd64Digest);
  });

  it("unknown image: NotFoundError; auth registry without credentials: UnauthorizedError", async () => {
    await expect(pull(c, `${REG}/does-not-exist:latest`)).rejects.toBeInstanceOf(NotFoundError);
    const authImage = `${env.BERTH_AUTH_REGISTRY}/busybox:latest`;
    await expect(pull(c, authImage, { credentials: null })).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(
      pull(c, authImage, { credentials: { serverAddress: "x", username: "berth", password: "wrong" } }),
    ).rejects.toBeInstanceOf(UnauthorizedError);
    const ok = await pull(c, authImage, {
      credentials: {
        serverAddress: env.BERTH_AUTH_REGISTRY as string,
        username: env.BERTH_AUTH_REGISTRY_USER as string,
        password: env.BERTH_AUTH_REGISTRY_PASSWORD as string,
      },
    });
    expect(ok.chainIds.length).toBe(1);
  });

  it("an aborted pull leaves no image, lease or ingest", async () => {
    const name = `${REG}/big:${tag}`;
    const ac = new AbortController();
    const seen: PullEvent[] = [];
    const err = await (async () => {
      for await (const e of pullProgress(c, name, { signal: ac.signal })) {
        seen.push(e);
        if (e.type === "blob-progress" && e.kind === "layer" && e.size > 2 * 1024 * 1024) ac.abort();
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    const partial = seen.find((e) => e.type === "blob-progress" && e.size > 2 * 1024 * 1024);
    expect(partial).toBeDefined();
    await expect(c.images.get({ name })).rejects.toBeInstanceOf(NotFoundError);
    expect((await c.leases.list({})).leases).toEqual([]);
    const { statuses } = await c.content.listStatuses({ filters: [] });
    expect(statuses.filter((s) => s.ref.startsWith("berth-"))).toEqual([]);
    if (partial?.type === "blob-progress") {
      await expect(c.content.info({ digest: partial.digest })).rejects.toBeInstanceOf(NotFoundError);
    }
  });

  it("a tampered blob: DigestMismatchError, nothing committed", async () => {
    const resolved = await new RegistryClient().resolve(`${REG}/big:${tag}`);
    const layer = resolved.manifest.json.layers.at(-1)?.digest as string;
    const proxy: Server = createServer((req, res) => {
      const up = httpRequest(`http://${REG}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        let first = true;
        r.on("data", (chunk: Buffer) => {
          if (first && req.url?.endsWith(layer)) chunk[100] = (chunk[100] ?? 0) ^ 0xff;
          first = false;
          res.write(chunk);
        });
        r.on("end", () => res.end());
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    try {
      const port = (proxy.address() as AddressInfo).port;
      const err = await pull(c, `127.0.0.1:${port}/big:${tag}`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect((err as DigestMismatchError).expected).toBe(layer);
      await expect(c.content.info({ digest: layer })).rejects.toBeInstanceOf(NotFoundError);
      expect((await c.content.listStatuses({})).statuses).toEqual([]);
      await expect(c.images.get({ name: `127.0.0.1:${port}/big:${tag}` })).rejects.toBeInstanceOf(
        NotFoundError,
      );
    } finally {
      proxy.close();
    }
  });
});

describe("run", () => {
  it("runs the test image and captures stdout, stderr and the exit code", async () => {
    const r = await run(c, IMAGE, {
      runtime,
      spec: [withProcessArgs("sh", "-c", "echo hello from berth; echo oops >&2; exit 3")],
    });
    expect(r).toEqual({ exitCode: 3, stdout: "hello from berth\n", stderr: "oops\n" });
    expect((await c.containers.list({})).containers).toEqual([]);
  });

  it("privileged with the host's devices sees a block device; the default sees none", async () => {
    const list = "ls /dev; test -b /dev/loop0 && echo has-loop0 || echo no-loop0";
    const plain = await run(c, IMAGE, { runtime, spec: [withProcessArgs("sh", "-c", list)] });
    expect(plain.stdout).toContain("no-loop0");
    const host = await run(c, IMAGE, {
      runtime,
      spec: [withProcessArgs("sh", "-c", list), withPrivileged(), withHostDevices()],
    });
    expect(host.exitCode).toBe(0);
    expect(host.stdout).toContain(existsSync("/dev/loop0") ? "has-loop0" : "no-loop0");
  });

  it("feeds stdin", async () => {
    const r = await run(c, IMAGE, { runtime, stdin: "shout\n", spec: [withProcessArgs("tr", "a-z", "A-Z")] });
    expect(r.stdout).toBe("SHOUT\n");
  });

  it("whiteouts hide files; Env, WorkingDir and User come from the image", async () => {
    const image = `${REG}/whiteout:${tag}`;
    await pull(c, image);
    const info = await getImage(c, image);
    expect(info.chainIds).toHaveLength(3);
    const r = await run(c, image, {
      runtime,
      spec: [
        withProcessArgs(
          "sh",
          "-c",
          'test -e /etc/secret && echo present; cat keep; echo "$FOO $(pwd) $(id -u):$(id -g)"',
        ),
      ],
    });
    expect(r.stdout).toBe("kept\nbar /data 1000:1001\n");
    expect(r.exitCode).toBe(0);
  });

  it("exec exit codes, signals, pause/resume, metrics and events", async () => {
    const id = `sig-${tag}`;
    const ctr = await createContainer(c, IMAGE, id, {
      runtime,
      spec: [
        withProcessArgs("sh", "-c", "trap 'echo got TERM; exit 7' TERM; while true; do sleep 0.1; done"),
      ],
    });
    const ac = new AbortController();
    const exits: unknown[] = [];
    const watching = (async () => {
      for await (const e of subscribeEvents(c, ['topic=="/tasks/exit"'], { signal: ac.signal }))
        exits.push(e.event);
    })().catch(() => {});
    try {
      const task = await ctr.newTask();
      const out = task.output();
      await task.start();
      for (const code of [0, 4]) {
        const p = await task.exec(["sh", "-c", `echo exec ${code}; exit ${code}`]);
        const pout = p.output();
        await p.start();
        expect((await p.wait()).exitCode).toBe(code);
        expect((await pout).stdout).toBe(`exec ${code}\n`);
        await p.delete();
      }
      await task.pause();
      expect(await task.status()).toBe("paused");
      await task.resume();
      expect(await task.status()).toBe("running");
      expect((await task.metrics())?.typeUrl).toMatch(/cgroups/);
      await new Promise((r) => setTimeout(r, 300)); // let sh install its trap
      await task.kill("SIGTERM");
      expect((await task.wait()).exitCode).toBe(7);
      expect((await out).stdout).toBe("got TERM\n");
      await task.delete();
      await new Promise((r) => setTimeout(r, 200));
      expect(exits).toContainEqual(expect.objectContaining({ containerId: id, exitStatus: 7 }));

      const task2 = await ctr.newTask();
      await task2.start();
      await task2.kill("SIGKILL");
      expect((await task2.wait()).exitCode).toBe(137);
      await task2.delete();
    } finally {
      ac.abort();
      await watching;
      await ctr.delete();
    }
  });

  it("choosing crun gives a clear error on this host", async () => {
    // crun cannot run containers here (hybrid cgroups); the point is that the failure is a clear error.
    const r = run(c, IMAGE, {
      runtime: { binaryName: "/usr/bin/crun", root: `${runtime.root}-crun-berth` },
      spec: [withProcessArgs("true")],
    });
    const err = await r.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (err === undefined) return; // crun works on this host after all
    expect((err as Error).message).toMatch(/crun|OCI runtime/i);
    expect((await c.containers.list({})).containers).toEqual([]);
  });

  it("a namespace that does not exist is a NotFoundError for requireNamespace", async () => {
    const ghost = c.withNamespace(`berth-ghost-${tag}`);
    await expect(ghost.requireNamespace()).rejects.toBeInstanceOf(NotFoundError);
    await expect(ghost.containers.get({ id: "x" })).rejects.toBeInstanceOf(NotFoundError);
    await expect(c.requireNamespace()).resolves.toBeUndefined();
  });
});
