// The doctor's cause and fix, recognised from berth's typed errors: real errors where a stand-in can make
// them (a missing socket, a plain file, a stale socket, a daemon that never answers, one whose API is too
// old), constructed ones for what needs a daemon or another user (EACCES as root, CNI, registries).
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortedError,
  ApiVersionError,
  DaemonError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveUnix } from "../../../test/support/unix-server.js";
import { type DoctorCheckName, diagnose, doctor } from "../src/doctor.js";
import { formatReport } from "../src/doctor-format.js";
import { discover } from "../src/index.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-diagnose-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** What discover() reports for a Docker endpoint (only docker tried, no context from HOME). */
async function dockerAttempt(host: string, probeTimeout = 2000): Promise<Error> {
  const found = await discover({ backend: "docker", env: { DOCKER_HOST: host, HOME: dir }, probeTimeout });
  for (const { runtime } of found.runtimes) await runtime.close();
  const attempt = found.attempts.find((a) => a.source === "DOCKER_HOST");
  if (!attempt) throw new Error(`no failed attempt at ${host}`);
  return attempt.error;
}

const at = (backend: string, check: DoctorCheckName, endpoint = "unix:///run/x/daemon.sock") => ({
  backend,
  check,
  endpoint,
  timeoutSeconds: 7,
});

describe("diagnose(): the daemon's socket, from real errors", () => {
  it("a socket that does not exist: the daemon is not running, how to start it", async () => {
    const err = await dockerAttempt(`unix://${dir}/missing.sock`);
    const d = diagnose(err, at("docker", "version", `unix://${dir}/missing.sock`));
    expect(d.kind).toBe("socket-missing");
    expect(d.cause).toContain(`${dir}/missing.sock`);
    expect(d.fix).toMatch(/systemctl start docker/);
    expect(d.fix).toContain("DOCKER_HOST");
  });

  it("a plain file where the socket should be", async () => {
    await writeFile(join(dir, "plain"), "");
    const err = await dockerAttempt(`unix://${dir}/plain`);
    expect(diagnose(err, at("docker", "version", `unix://${dir}/plain`)).kind).toBe("not-a-socket");
  });

  it("a socket nobody listens on (a daemon that died): connection refused, restart it", async () => {
    const path = join(dir, "stale.sock");
    // A process that binds the socket and dies at once leaves the file behind.
    const r = spawnSync(process.execPath, [
      "-e",
      `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`,
    ]);
    expect(r.signal).toBe("SIGKILL");
    const err = await dockerAttempt(`unix://${path}`);
    const d = diagnose(err, at("podman", "version", `unix://${path}`));
    expect(d.kind).toBe("connection-refused");
    expect(d.fix).toMatch(/restart its API service/);
  });

  it("a daemon that never answers: a timeout, and --timeout to give it longer", async () => {
    const path = join(dir, "silent.sock");
    const server: Server = createServer(() => {});
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const err = await dockerAttempt(`unix://${path}`, 300);
      const d = diagnose(err, at("docker", "version", `unix://${path}`));
      expect(d.kind).toBe("timeout");
      expect(d.cause).toContain("7 s");
      expect(d.fix).toContain("--timeout");
    } finally {
      server.close();
    }
  });

  it("a daemon whose API is too old, seen by doctor() itself", async () => {
    const old = await serveUnix((_req, res) => {
      res.writeHead(200, { "Api-Version": "1.12", "Content-Type": "text/plain" });
      res.end("OK");
    });
    try {
      const report = await doctor({
        env: { BERTH_RUNTIME: "docker", DOCKER_HOST: old.host, HOME: dir },
        timeoutSeconds: 5,
      });
      expect(report.ok).toBe(false);
      const docker = report.backends.find((b) => b.endpoint === old.host);
      expect(docker?.reachable).toBe(false);
      const version = docker?.checks.find((c) => c.name === "version");
      expect(version?.status).toBe("fail");
      expect(version?.problem?.kind).toBe("api-too-old");
      expect(version?.problem?.cause).toContain("1.12");
      expect(version?.problem?.error.name).toBe("ApiVersionError");
      expect(docker?.checks.filter((c) => c.status === "skip")).toHaveLength(8);
      expect(formatReport(report)).toMatch(
        /No container runtime answered[\s\S]*cause: the daemon's API is too old/,
      );
    } finally {
      await old.close();
    }
  });
});

describe("diagnose(): constructed errors", () => {
  const eacces = Object.assign(new Error("connect EACCES /var/run/docker.sock"), { code: "EACCES" });

  it("permission denied on the socket: the docker group, root, or DOCKER_HOST", () => {
    const err = new UnavailableError(
      "socket /var/run/docker.sock: permission denied (run as a user who may use it)",
      {
        operation: "connect",
        cause: eacces,
      },
    );
    const d = diagnose(err, at("docker", "version", "unix:///var/run/docker.sock"));
    expect(d.kind).toBe("permission-denied");
    expect(d.fix).toMatch(/docker group/);
    expect(d.fix).toMatch(/DOCKER_HOST/);
    // gRPC's way of saying it, for containerd
    const grpc = new UnavailableError(
      "Version: cannot reach /run/containerd/containerd.sock: permission denied (No connection established. Last error: Error: connect EACCES /run/containerd/containerd.sock)",
      { status: "UNAVAILABLE" },
    );
    const c = diagnose(grpc, at("containerd", "version", "/run/containerd/containerd.sock"));
    expect(c.kind).toBe("permission-denied");
    expect(c.fix).toContain("CONTAINERD_ADDRESS");
  });

  it("a permission error inside a container is not the socket's", () => {
    const err = new DaemonError("exec failed: permission denied", { daemonMessage: "permission denied" });
    expect(diagnose(err, at("docker", "exec")).kind).toBe("error");
  });

  it("Docker Engine API too old for an operation", () => {
    const err = new ApiVersionError(
      "containers.x needs Engine API 1.44, but this connection uses 1.41",
      "1.44",
      "1.41",
    );
    const d = diagnose(err, at("docker", "run"));
    expect(d.kind).toBe("api-too-old");
    expect(d.cause).toContain("1.41");
    expect(d.fix).toMatch(/upgrade Docker Engine/);
  });

  it("no CNI portmap plugin on a CRI runtime", () => {
    const err = new DaemonError("RunPodSandbox: failed", {
      daemonMessage:
        'failed to setup network for sandbox "0a1b": plugin type="portmap" failed (add): failed to find plugin "portmap" in path [/opt/cni/bin]',
    });
    const d = diagnose(err, at("cri", "run"));
    expect(d.kind).toBe("cni-plugin-missing");
    expect(d.cause).toContain("portmap");
    expect(d.fix).toMatch(/containernetworking-plugins/);
  });

  it("no CNI configuration on a CRI runtime", () => {
    const err = new DaemonError(
      'RunPodSandbox: failed to setup network for sandbox "0a1b": cni plugin not initialized',
    );
    const d = diagnose(err, at("cri", "run"));
    expect(d.kind).toBe("cni-config-missing");
    expect(d.fix).toMatch(/net\.d/);
  });

  it("pull failures: credentials, registry unreachable, TLS, no such image, too slow", () => {
    const pull = (err: unknown) => diagnose(err, at("docker", "pull")).kind;
    expect(pull(new UnauthorizedError("pull: 401 Unauthorized"))).toBe("registry-auth");
    expect(
      pull(
        new DaemonError(
          "pull access denied for nosuch, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
        ),
      ),
    ).toBe("registry-auth");
    expect(
      pull(
        new DaemonError(
          'Get "https://registry.invalid/v2/": dial tcp: lookup registry.invalid: no such host',
        ),
      ),
    ).toBe("registry-unreachable");
    // containerd's own registry client: the registry's refusal is an UnavailableError too
    expect(
      pull(
        new UnavailableError("GET http://127.0.0.1:5999/v2/: connect ECONNREFUSED 127.0.0.1:5999", {
          cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5999"), { code: "ECONNREFUSED" }),
        }),
      ),
    ).toBe("registry-unreachable");
    expect(
      pull(
        new DaemonError('Get "https://10.0.0.1:5000/v2/": http: server gave HTTP response to HTTPS client'),
      ),
    ).toBe("registry-tls");
    expect(pull(new NotFoundError("manifest for busybox:nosuch not found: manifest unknown"))).toBe(
      "image-not-found",
    );
    const slow = diagnose(new TimeoutError("pull: no result within 7 s"), at("docker", "pull"));
    expect(slow.kind).toBe("timeout");
    expect(slow.fix).toContain("--image");
  });

  it("in a pull, the daemon's own socket going away is the daemon's", () => {
    const err = new UnavailableError(
      "images.pull: cannot reach unix:///run/x/daemon.sock: connection refused",
      {
        cause: Object.assign(new Error("connect ECONNREFUSED /run/x/daemon.sock"), { code: "ECONNREFUSED" }),
      },
    );
    expect(diagnose(err, at("docker", "pull")).kind).toBe("connection-refused");
  });

  it("interrupted, and anything else with its own message as the cause", () => {
    expect(diagnose(new AbortedError("run: aborted"), at("docker", "run")).kind).toBe("aborted");
    const other = diagnose(new Error("something odd\nsecond line"), at("podman", "logs"));
    expect(other).toMatchObject({ kind: "error", cause: "something odd" });
  });
});
