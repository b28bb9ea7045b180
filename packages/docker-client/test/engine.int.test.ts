// The Docker client's integration suite, run against both the Docker engine and Podman's
// Docker-compatible API started by the harness.
import { randomBytes } from "node:crypto";
import {
  AbortedError,
  ApiVersionError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  collect,
  DockerClient,
  DockerRuntime,
  decodePathStat,
  execRun,
  packTar,
  pull,
  type Upgraded,
  unpackTar,
} from "../src/index.js";

const env = process.env as Record<string, string>;
const image = env.BERTH_TEST_IMAGE ?? "";
const registry = env.BERTH_REGISTRY ?? "";
const run = randomBytes(4).toString("hex");
const label = { "berth.test": run };

const targets = [
  { name: "docker", host: env.DOCKER_HOST },
  { name: "podman", host: env.PODMAN_HOST },
];

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");

describe.each(targets)("$name engine API", ({ name, host }) => {
  const docker = new DockerClient({ host: host ?? "", backend: name });

  async function container(cmd: string[], extra: Record<string, unknown> = {}): Promise<string> {
    const { Id } = await docker.containers.create({
      name: `berth-${name}-${run}-${randomBytes(3).toString("hex")}`,
      body: { Image: image, Cmd: cmd, Labels: label, ...extra },
    });
    return Id;
  }

  beforeAll(async () => {
    await pull(docker, image);
  });

  afterAll(async () => {
    const list = await docker.containers.list({ all: true, filters: { label: [`berth.test=${run}`] } });
    for (const c of list) {
      await docker.containers.remove({ id: c.Id ?? "", force: true }).catch(() => {});
    }
    await docker.close();
  });

  it("runs a container through its lifecycle", async () => {
    const id = await container(["sh", "-c", "echo hi; exit 7"]);
    const listed = await docker.containers.list({ all: true, filters: { label: [`berth.test=${run}`] } });
    expect(listed.map((c) => c.Id)).toContain(id);
    await docker.containers.start({ id });
    const waited = await docker.containers.wait({ id });
    expect(waited.StatusCode).toBe(7);
    const info = await docker.containers.inspect({ id });
    // Podman reports "stopped" where Docker says "exited": the enum stays open for this.
    expect(["exited", "stopped"]).toContain(info.State?.Status);
    expect(info.State?.ExitCode).toBe(7);
    expect(info.Config?.Labels).toMatchObject(label);
    await docker.containers.remove({ id });
    await expect(docker.containers.inspect({ id })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("follows logs with stdout and stderr apart, and the stream ends", async () => {
    const id = await container([
      "sh",
      "-c",
      "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.1; done",
    ]);
    await docker.containers.start({ id });
    const logs = await docker.containers.logs({ id, follow: true, stdout: true, stderr: true });
    expect(logs.tty).toBe(false);
    const { stdout, stderr } = await collect(logs);
    expect(text(stdout)).toBe("out1\nout2\nout3\n");
    expect(text(stderr)).toBe("err1\nerr2\nerr3\n");
  });

  it("aborting a log follow closes it promptly", async () => {
    const id = await container(["sh", "-c", "while true; do echo tick; sleep 0.1; done"]);
    await docker.containers.start({ id });
    const controller = new AbortController();
    const logs = await docker.containers.logs(
      { id, follow: true, stdout: true },
      { signal: controller.signal },
    );
    let seen = 0;
    const started = Date.now();
    const err = await (async () => {
      for await (const _ of logs) {
        if (++seen === 3) controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("execs with stdin and reports the exit code", async () => {
    const id = await container(["sleep", "300"]);
    await docker.containers.start({ id });
    const res = await execRun(docker, id, ["sh", "-c", "cat; echo done >&2; exit 3"], { stdin: "hello\n" });
    expect(res.exitCode).toBe(3);
    expect(text(res.stdout)).toBe("hello\n");
    expect(text(res.stderr)).toBe("done\n");
    const plain = await execRun(docker, id, ["sh", "-c", "echo $FOO; pwd"], {
      env: ["FOO=bar"],
      workdir: "/tmp",
    });
    expect(plain).toMatchObject({ exitCode: 0 });
    expect(text(plain.stdout)).toBe("bar\n/tmp\n");
  });

  it("Runtime.stop waits out a grace longer than the client's deadline", async () => {
    // The container ignores SIGTERM: the daemon answers only after the grace, then SIGKILL.
    const id = await container(["sh", "-c", "trap '' TERM; while :; do sleep 1; done"]);
    await docker.containers.start({ id });
    const short = new DockerClient({ host: host ?? "", backend: name, timeout: 1_500 });
    try {
      const started = Date.now();
      await new DockerRuntime(short).stop(id, { graceSeconds: 3 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
      const info = await docker.containers.inspect({ id });
      expect(info.State?.Running).toBe(false);
    } finally {
      await short.close();
    }
  });

  it("ends an exec at its timeout with a TimeoutError, and at the caller's abort with an AbortedError", async () => {
    const id = await container(["sleep", "300"]);
    await docker.containers.start({ id });
    for (const stdin of [undefined, "x"]) {
      const started = Date.now();
      const late = await execRun(docker, id, ["sleep", "30"], {
        timeout: 300,
        ...(stdin ? { stdin } : {}),
      }).catch((e: unknown) => e);
      expect(late).toBeInstanceOf(TimeoutError);
      expect((late as TimeoutError).message).toContain("did not finish in 300 ms");
      expect(Date.now() - started).toBeLessThan(10_000);
      const aborted = await execRun(docker, id, ["sleep", "30"], {
        signal: AbortSignal.timeout(300),
        timeout: 60_000,
        ...(stdin ? { stdin } : {}),
      }).catch((e: unknown) => e);
      expect(aborted).toBeInstanceOf(AbortedError);
    }
  });

  it("attaches to a container's stdin and output", async () => {
    const id = await container(["sh", "-c", "read line; echo got:$line"], {
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    const conn = (await docker.containers.attach({
      id,
      stream: true,
      stdin: true,
      stdout: true,
      stderr: true,
    })) as Upgraded;
    await docker.containers.start({ id });
    await conn.write("berth\n");
    const { stdout } = await collect(conn);
    expect(text(stdout)).toContain("got:berth");
  });

  it("copies a file in and out with the path stat", async () => {
    const id = await container(["sleep", "300"]);
    await docker.containers.start({ id });
    await docker.containers.putArchive({
      id,
      path: "/tmp",
      body: packTar([{ name: "berth.txt", data: "copied in\n" }]),
    });
    const archive = await docker.containers.getArchive({ id, path: "/tmp/berth.txt" });
    const stat = decodePathStat(archive.headers);
    expect(stat).toMatchObject({ name: "berth.txt", size: 10 });
    const files: Record<string, string> = {};
    for await (const entry of unpackTar(archive)) files[entry.name] = text(entry.data);
    expect(files).toEqual({ "berth.txt": "copied in\n" });
    const info = await docker.containers.archiveInfo({ id, path: "/tmp/berth.txt" });
    expect(decodePathStat(info.headers)?.size).toBe(10);
  });

  it("pulls from the local registry with progress", async () => {
    const messages: unknown[] = [];
    await pull(docker, image, { onProgress: (m) => messages.push(m) });
    expect(messages.length).toBeGreaterThan(0);
    const img = await docker.images.inspect({ name: image });
    expect(img.Id).toMatch(/^(sha256:)?[0-9a-f]{64}$/);
  });

  it("gives NotFound for an image the registry does not have", async () => {
    await expect(pull(docker, `${registry}/berth-no-such-image:latest`)).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it("refuses an operation newer than the connection's API version before sending it", async () => {
    // Pinned to 1.41 (what Debian 12's Docker and Podman speak), so the check runs on newer daemons too.
    const old = new DockerClient({ host: host ?? "", backend: name, apiVersion: "1.41" });
    try {
      const err = await old.volumes.update({ name: "x", version: 1, body: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiVersionError);
      expect(err).toMatchObject({ required: "1.42", actual: "1.41" });
    } finally {
      await old.close();
    }
  });

  it("pushes a tagged image to the registry", async () => {
    const repo = `${registry}/berth-push-${name}`;
    await docker.images.tag({ name: image, repo, tag: run });
    const stream = await docker.images.push({ name: repo, tag: run, registryAuth: {} });
    for await (const _ of stream) {
      // progress
    }
    const res = await fetch(`http://${registry}/v2/berth-push-${name}/manifests/${run}`, {
      method: "HEAD",
      headers: {
        accept:
          "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
      },
    });
    expect(res.status).toBe(200);
  });

  it("builds from a tar context with the legacy builder", async () => {
    const tag = `berth-build-${name}:${run}`;
    const context = packTar([
      { name: "Dockerfile", data: `FROM ${image}\nCOPY msg.txt /msg.txt\nCMD ["cat", "/msg.txt"]\n` },
      { name: "msg.txt", data: "built by berth\n" },
    ]);
    const stream = await docker.images.build({ t: tag, rm: true, body: context });
    for await (const _ of stream) {
      // build output
    }
    const id = await container([], { Image: tag, Cmd: undefined });
    await docker.containers.start({ id });
    await docker.containers.wait({ id });
    const { stdout } = await collect(await docker.containers.logs({ id, stdout: true }));
    expect(text(stdout)).toBe("built by berth\n");
  });

  it("streams events", async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const controller = new AbortController();
    const events = await docker.system.events(
      { since: String(since), filters: { type: ["container"], label: [`berth.test=${run}`] } },
      { signal: controller.signal },
    );
    const id = await container(["true"]);
    for await (const ev of events) {
      if (ev.Actor?.ID === id && ev.Action === "create") break;
    }
    controller.abort();
  });

  it("reads one stats sample", async () => {
    const id = await container(["sleep", "300"]);
    await docker.containers.start({ id });
    const stats = await docker.containers.stats({ id, stream: false });
    for await (const s of stats) {
      expect(s.memory_stats).toBeDefined();
      break;
    }
  });

  it("creates, inspects and removes networks and volumes", async () => {
    const net = await docker.networks.create({ body: { Name: `berth-net-${run}`, Labels: label } });
    const netInfo = await docker.networks.inspect({ id: net.Id ?? "" });
    expect(netInfo.Name).toBe(`berth-net-${run}`);
    await docker.networks.remove({ id: net.Id ?? "" });
    await expect(docker.networks.inspect({ id: net.Id ?? "" })).rejects.toBeInstanceOf(NotFoundError);

    const vol = await docker.volumes.create({ body: { Name: `berth-vol-${run}`, Labels: label } });
    expect(vol.Name).toBe(`berth-vol-${run}`);
    const listed = await docker.volumes.list({ filters: { label: [`berth.test=${run}`] } });
    expect(listed.Volumes?.map((v) => v.Name)).toContain(`berth-vol-${run}`);
    await docker.volumes.remove({ name: `berth-vol-${run}` });
  });

  it("pulls from a registry that requires a password", async () => {
    const authImage = `${env.BERTH_AUTH_REGISTRY}/busybox:latest`;
    await expect(pull(docker, authImage, { auth: false })).rejects.toBeInstanceOf(UnauthorizedError);
    await pull(docker, authImage, {
      auth: {
        username: env.BERTH_AUTH_REGISTRY_USER ?? "",
        password: env.BERTH_AUTH_REGISTRY_PASSWORD ?? "",
        serverAddress: env.BERTH_AUTH_REGISTRY ?? "",
      },
    });
    const img = await docker.images.inspect({ name: authImage });
    expect(img.Id).toBeTruthy();
  });
});
