// ssh:// hosts against a real OpenSSH server on 127.0.0.1 (started here, from Debian's openssh-server
// that the harness installs) in front of the harness's dockerd, through `docker system dial-stdio`.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { UnauthorizedError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { daemonSet } from "../../../test/support/daemon-set.js";
import { DockerClient, knownHostsAccepts } from "../src/index.js";

const dir = mkdtempSync("/tmp/berth-ssh-");
let sshd: ChildProcess | undefined;
let port = 0;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function listening(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(p, "127.0.0.1");
    s.on("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

beforeAll(async () => {
  port = await freePort();
  mkdirSync("/run/sshd", { recursive: true });
  for (const k of ["host", "client", "stranger"]) {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, k)]);
  }
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "client.pub")));
  const hostKey = readFileSync(join(dir, "host.pub"), "utf8").trim().split(" ").slice(0, 2).join(" ");
  writeFileSync(join(dir, "known_hosts"), `[127.0.0.1]:${port} ${hostKey}\n`);
  writeFileSync(
    join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${join(dir, "host")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      `SetEnv DOCKER_HOST=${process.env.DOCKER_HOST}`,
    ].join("\n"),
  );
  sshd = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: "ignore" });
  for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 50));
});

afterAll(() => {
  sshd?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

describe("ssh:// Docker host", () => {
  it("talks to the daemon through one SSH connection", async () => {
    const docker = new DockerClient({
      host: `ssh://root@127.0.0.1:${port}`,
      ssh: { privateKey: readFileSync(join(dir, "client")), knownHostsPath: join(dir, "known_hosts") },
    });
    try {
      const v = await docker.system.version();
      expect(v.ApiVersion).toBe(daemonSet.dockerApi);
      const results = await Promise.all(Array.from({ length: 20 }, () => docker.system.ping()));
      expect(results.every((r) => r === "OK")).toBe(true);
      expect(docker.ssh?.connections).toBe(1);
    } finally {
      await docker.close();
    }
  });

  it("refuses a host whose key is not in known_hosts", async () => {
    writeFileSync(join(dir, "empty_known_hosts"), "");
    const docker = new DockerClient({
      host: `ssh://root@127.0.0.1:${port}`,
      ssh: { privateKey: readFileSync(join(dir, "client")), knownHostsPath: join(dir, "empty_known_hosts") },
    });
    const err = await docker.system.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect((err as Error).message).toMatch(/known_hosts/);
    await docker.close();
  });

  it("refuses a host key marked @revoked, even though another line lists it", async () => {
    const hostKey = readFileSync(join(dir, "host.pub"), "utf8").trim().split(" ").slice(0, 2).join(" ");
    const listed = readFileSync(join(dir, "known_hosts"), "utf8");
    writeFileSync(join(dir, "revoked_known_hosts"), `${listed}@revoked * ${hostKey}\n`);
    const docker = new DockerClient({
      host: `ssh://root@127.0.0.1:${port}`,
      ssh: {
        privateKey: readFileSync(join(dir, "client")),
        knownHostsPath: join(dir, "revoked_known_hosts"),
      },
    });
    const err = await docker.system.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect((err as Error).message).toMatch(/@revoked/);
    await docker.close();
  });

  it("refuses a host known only through @cert-authority, saying host certificates are not supported", async () => {
    const ca = readFileSync(join(dir, "stranger.pub"), "utf8").trim().split(" ").slice(0, 2).join(" ");
    writeFileSync(join(dir, "ca_known_hosts"), `@cert-authority [127.0.0.1]:* ${ca}\n`);
    const docker = new DockerClient({
      host: `ssh://root@127.0.0.1:${port}`,
      ssh: { privateKey: readFileSync(join(dir, "client")), knownHostsPath: join(dir, "ca_known_hosts") },
    });
    const err = await docker.system.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect((err as Error).message).toMatch(/@cert-authority.*does not verify SSH host certificates/);
    await docker.close();
  });

  it("refuses a key the server does not know", async () => {
    const docker = new DockerClient({
      host: `ssh://root@127.0.0.1:${port}`,
      ssh: {
        privateKey: readFileSync(join(dir, "stranger")),
        knownHostsPath: join(dir, "known_hosts"),
        agent: "",
      },
    });
    await expect(docker.system.ping()).rejects.toBeInstanceOf(UnauthorizedError);
    await docker.close();
  });

  it("checks hashed known_hosts entries too", () => {
    const key = Buffer.from("AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyBytesForTest", "base64");
    const salt = Buffer.from("0123456789abcdef0123");
    const hash = createHmac("sha1", salt).update("[example.com]:2222").digest("base64");
    const line = `|1|${salt.toString("base64")}|${hash} ssh-ed25519 ${key.toString("base64")}`;
    expect(knownHostsAccepts(line, { username: "u", host: "example.com", port: 2222 }, key)).toBe(true);
    expect(knownHostsAccepts(line, { username: "u", host: "example.org", port: 2222 }, key)).toBe(false);
  });
});
