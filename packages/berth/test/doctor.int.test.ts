// `berth-sdk doctor` as a user runs it: the built CLI in a child process, against the harness's daemons
// (the global setup put their addresses in the environment), and with no daemon reachable at all.
import { execFile, spawnSync } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CriClient } from "@berth/crio-client";
import { connect } from "berth-sdk";
import { beforeAll, describe, expect, it } from "vitest";
import { daemonSet } from "../../../test/support/daemon-set.js";
import type { DoctorReport } from "../src/doctor.js";

const pkg = resolve(fileURLToPath(new URL("..", import.meta.url)));
const cli = join(pkg, "dist", "cli.js");

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { env, timeout: 240_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

beforeAll(() => {
  // The test is of the built CLI: build it, so it is never a stale one.
  const r = spawnSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: pkg, encoding: "utf8" });
  expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
}, 120_000);

describe("berth-sdk doctor on the harness's daemons", () => {
  it("checks docker, podman, containerd and cri, every check passing, and leaves nothing behind", async () => {
    const image = `${process.env.BERTH_REGISTRY}/busybox:latest`;
    const ran = await runCli(["doctor", "--json", "--image", image, "--timeout", "60"], process.env);
    const report = JSON.parse(ran.stdout) as DoctorReport;
    const summary = report.backends.map((b) => ({
      backend: b.backend,
      runtime: b.runtime?.version,
      checks: Object.fromEntries(b.checks.map((c) => [c.name, c.status === "fail" ? c.problem : c.status])),
    }));
    expect(ran.code, JSON.stringify(summary, null, 2)).toBe(0);
    expect(report).toMatchObject({ schemaVersion: 1, ok: true, aborted: false, image });
    expect(report.label.key).toBe("berth.doctor");

    const harness = {
      docker: process.env.DOCKER_HOST,
      podman: process.env.PODMAN_HOST,
      containerd: process.env.CONTAINERD_ADDRESS,
      cri: process.env.CONTAINER_RUNTIME_ENDPOINT,
    };
    const versions = {
      docker: daemonSet.docker,
      podman: daemonSet.podman,
      containerd: daemonSet.containerd,
      cri: daemonSet.containerd,
    };
    for (const [backend, endpoint] of Object.entries(harness)) {
      const b = report.backends.find((x) => x.backend === backend && x.endpoint === endpoint);
      expect(b, `${backend} at ${endpoint}`).toBeDefined();
      if (!b) continue;
      expect(b.reachable && b.ok).toBe(true);
      expect(b.runtime?.version).toMatch(versions[backend as keyof typeof versions]);
      expect(b.checks.map((c) => c.name)).toEqual([
        "version",
        "list",
        "pull",
        "run",
        "exec",
        "logs",
        "events",
        "stop",
        "remove",
      ]);
      for (const c of b.checks) {
        // events only where the backend has them (containerd's CRI from 1.7)
        const expected = c.name === "events" && backend === "cri" && !daemonSet.criEvents ? "skip" : "pass";
        expect(`${backend} ${c.name} ${c.status}`).toBe(`${backend} ${c.name} ${expected}`);
      }
    }

    // Nothing the doctor labelled is left on any daemon: containers, and on the CRI pod sandboxes too.
    for (const backend of ["docker", "podman", "containerd", "cri"] as const) {
      const rt = await connect({ backend });
      try {
        const left = (await rt.list({ all: true })).filter((c) => "berth.doctor" in c.labels);
        expect(left.map((c) => `${backend} ${c.id} ${c.name}`)).toEqual([]);
      } finally {
        await rt.close();
      }
    }
    const cri = new CriClient({ endpoint: harness.cri ?? "" });
    try {
      const pods = (await cri.listPodSandbox()).filter((p) => "berth.doctor" in (p.labels ?? {}));
      expect(pods.map((p) => p.id)).toEqual([]);
    } finally {
      await cri.close();
    }
  }, 300_000);
});

describe("berth-sdk doctor's pull failures, recognised on every backend", () => {
  const cases = [
    ["a registry nobody listens at", "127.0.0.1:1/busybox:latest", "registry-unreachable"],
    [
      "an image the registry does not have",
      `${process.env.BERTH_REGISTRY}/berth-no-such-image:latest`,
      "image-not-found",
    ],
    [
      "a registry that wants credentials",
      `${process.env.BERTH_AUTH_REGISTRY}/busybox:latest`,
      "registry-auth",
    ],
  ] as const;
  it.each(cases)(
    "%s",
    async (_what, image, kind) => {
      const ran = await runCli(["doctor", "--json", "--image", image, "--timeout", "60"], process.env);
      expect(ran.code).toBe(1);
      const report = JSON.parse(ran.stdout) as DoctorReport;
      const pulls = Object.fromEntries(
        ["docker", "podman", "containerd", "cri"].map((backend) => {
          const b = report.backends.find((x) => x.backend === backend && x.reachable);
          const pull = b?.checks.find((c) => c.name === "pull");
          return [backend, `${pull?.status} ${pull?.problem?.kind}`];
        }),
      );
      expect(pulls).toEqual({
        docker: `fail ${kind}`,
        podman: `fail ${kind}`,
        containerd: `fail ${kind}`,
        cri: `fail ${kind}`,
      });
      // what needs the image did not run
      for (const b of report.backends.filter((x) => x.reachable)) {
        expect(b.checks.find((c) => c.name === "run")).toMatchObject({
          status: "skip",
          detail: "needs pull",
        });
      }
    },
    240_000,
  );
});

describe("berth-sdk doctor with no daemon reachable", () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "berth-doctor-home-"));
    await chmod(home, 0o755); // readable by the unprivileged user of the permission test
    const nowhere = join(home, "nowhere");
    // Only what Node needs: no harness variable, no XDG_RUNTIME_DIR, a HOME without a Docker context.
    env = {
      PATH: process.env.PATH,
      HOME: home,
      DOCKER_HOST: `unix://${nowhere}/docker.sock`,
      PODMAN_HOST: `unix://${nowhere}/podman.sock`,
      CONTAINERD_ADDRESS: `${nowhere}/containerd.sock`,
      CONTAINER_RUNTIME_ENDPOINT: `unix://${nowhere}/cri.sock`,
    };
    return () => rm(home, { recursive: true, force: true });
  });

  it("exits 1 and says what it probed and how to point it at a daemon", async () => {
    const ran = await runCli(["doctor"], env);
    expect(ran.code).toBe(1);
    expect(ran.stdout).toContain("No container runtime answered. Probed:");
    for (const sock of ["docker.sock", "podman.sock", "containerd.sock", "cri.sock"]) {
      expect(ran.stdout).toContain(`${home}/nowhere/${sock}`);
    }
    expect(ran.stdout).toContain("the daemon is not running");
    for (const variable of [
      "DOCKER_HOST=",
      "PODMAN_HOST=",
      "CONTAINERD_ADDRESS=",
      "CONTAINER_RUNTIME_ENDPOINT=",
    ]) {
      expect(ran.stdout).toContain(variable);
    }
    expect(ran.stdout).toMatch(/systemctl start docker/);
  });

  it("--json: ok false, each configured endpoint a socket-missing failure, exit 1", async () => {
    const ran = await runCli(["doctor", "--json"], env);
    expect(ran.code).toBe(1);
    const report = JSON.parse(ran.stdout) as DoctorReport;
    expect(report.ok).toBe(false);
    expect(report.backends.filter((b) => b.reachable)).toEqual([]);
    expect(report.backends.map((b) => b.backend).sort()).toEqual(["containerd", "cri", "docker", "podman"]);
    for (const b of report.backends) expect(b.checks[0]?.problem?.kind).toBe("socket-missing");
    expect(report.probed.some((p) => p.outcome === "absent" && p.source === "default socket")).toBe(true);
  });

  // As root the socket's permissions are no obstacle: the same CLI as the unprivileged user nobody. It
  // keeps CAP_DAC_READ_SEARCH only, to read a checkout nobody could not reach (a clone under a 0700
  // mktemp folder): that bypasses read and search checks, never the write permission a connect() to a
  // unix socket needs.
  it.skipIf(process.getuid?.() !== 0)(
    "a socket this user may not use: permission denied, the docker group",
    async () => {
      const ran = await new Promise<Ran>((done) => {
        execFile(
          "setpriv",
          [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+dac_read_search",
            "--ambient-caps=+dac_read_search",
            process.execPath,
            cli,
            "doctor",
            "--json",
          ],
          { env: { ...env, DOCKER_HOST: process.env.DOCKER_HOST }, timeout: 60_000 },
          (err, stdout, stderr) =>
            done({ code: err ? (typeof err.code === "number" ? err.code : null) : 0, stdout, stderr }),
        );
      });
      expect(ran.code, ran.stderr).toBe(1);
      const report = JSON.parse(ran.stdout) as DoctorReport;
      const docker = report.backends.find((b) => b.endpoint === process.env.DOCKER_HOST);
      const problem = docker?.checks[0]?.problem;
      expect(problem?.kind).toBe("permission-denied");
      expect(problem?.fix).toMatch(/docker group/);
    },
  );

  it("usage errors exit 2, --help 0", async () => {
    expect((await runCli(["doctor", "--timeout", "0"], env)).code).toBe(2);
    expect((await runCli(["doctor", "--bogus"], env)).code).toBe(2);
    expect((await runCli(["checkup"], env)).code).toBe(2);
    const help = await runCli(["--help"], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: berth-sdk doctor/);
  });
});
