import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../src/index.js";
import {
  DEFAULT_DOCKER_SOCKET,
  defaultSocketCandidates,
  dockerContextPaths,
  resolveDockerEndpoint,
} from "../src/internal.js";

let root: string;
let n = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-endpoint-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const HOME = "/home/tester";
const XDG = "/run/user/1000";
const nothingExists = () => false;

async function newConfigDir(config?: unknown): Promise<string> {
  const dir = join(root, `cfg-${++n}`);
  await mkdir(dir);
  if (config !== undefined) await writeFile(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

/** Write a context the way `docker context create` stores it. */
async function addContext(
  configDir: string,
  name: string,
  docker: { Host: string; SkipTLSVerify?: boolean },
  tls: string[] = [],
): Promise<void> {
  const id = createHash("sha256").update(name).digest("hex");
  const metaDir = join(configDir, "contexts", "meta", id);
  await mkdir(metaDir, { recursive: true });
  await writeFile(
    join(metaDir, "meta.json"),
    JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker } }),
  );
  if (tls.length) {
    const tlsDir = join(configDir, "contexts", "tls", id, "docker");
    await mkdir(tlsDir, { recursive: true });
    for (const f of tls) await writeFile(join(tlsDir, f), "pem");
  }
}

describe("defaultSocketCandidates", () => {
  it("lists Docker, rootless, Desktop and Podman sockets in order", () => {
    expect(defaultSocketCandidates({ HOME, XDG_RUNTIME_DIR: XDG })).toEqual([
      "/var/run/docker.sock",
      `${XDG}/docker.sock`,
      `${HOME}/.docker/run/docker.sock`,
      `${HOME}/.docker/desktop/docker.sock`,
      "/run/podman/podman.sock",
      `${XDG}/podman/podman.sock`,
    ]);
  });

  it("leaves out the XDG_RUNTIME_DIR sockets when it is unset", () => {
    const list = defaultSocketCandidates({ HOME });
    expect(list).toHaveLength(4);
    expect(list.some((p) => p.includes("undefined"))).toBe(false);
  });
});

describe("resolveDockerEndpoint", () => {
  it("uses DOCKER_HOST above everything else", async () => {
    const configDir = await newConfigDir({ currentContext: "remote" });
    await addContext(configDir, "remote", { Host: "tcp://remote:2376" });
    const ep = await resolveDockerEndpoint({
      env: { HOME, DOCKER_HOST: "tcp://10.0.0.1:2375", DOCKER_CONTEXT: "remote" },
      configDir,
      exists: () => true,
    });
    expect(ep).toEqual({ host: "tcp://10.0.0.1:2375", source: "DOCKER_HOST" });
  });

  it("takes DOCKER_HOST TLS settings from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH", async () => {
    const certs = join(root, `certs-${++n}`);
    await mkdir(certs);
    await writeFile(join(certs, "ca.pem"), "x");
    await writeFile(join(certs, "cert.pem"), "x");
    const ep = await resolveDockerEndpoint({
      env: { HOME, DOCKER_HOST: "tcp://h:2376", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: certs },
    });
    expect(ep.tls).toEqual({
      caPath: join(certs, "ca.pem"),
      certPath: join(certs, "cert.pem"),
      verify: true,
    });
    const insecure = await resolveDockerEndpoint({
      env: { HOME, DOCKER_HOST: "tcp://h:2376", DOCKER_TLS: "1" },
    });
    expect(insecure.tls?.verify).toBe(false);
  });

  it("follows DOCKER_CONTEXT to the context's endpoint and TLS material", async () => {
    const configDir = await newConfigDir({ currentContext: "other" });
    await addContext(configDir, "remote", { Host: "tcp://remote:2376", SkipTLSVerify: false }, [
      "ca.pem",
      "cert.pem",
      "key.pem",
    ]);
    const ep = await resolveDockerEndpoint({ env: { HOME, DOCKER_CONTEXT: "remote" }, configDir });
    const tlsDir = dockerContextPaths(configDir, "remote").tlsDir;
    expect(ep).toEqual({
      host: "tcp://remote:2376",
      source: "context",
      context: "remote",
      tls: {
        caPath: join(tlsDir, "ca.pem"),
        certPath: join(tlsDir, "cert.pem"),
        keyPath: join(tlsDir, "key.pem"),
        verify: true,
      },
    });
    expect(tlsDir).toContain(createHash("sha256").update("remote").digest("hex"));
  });

  it("follows currentContext from config.json ($DOCKER_CONFIG)", async () => {
    const configDir = await newConfigDir({ currentContext: "colima" });
    await addContext(configDir, "colima", { Host: "unix:///home/u/.colima/default/docker.sock" });
    const ep = await resolveDockerEndpoint({ env: { HOME, DOCKER_CONFIG: configDir } });
    expect(ep).toEqual({
      host: "unix:///home/u/.colima/default/docker.sock",
      source: "context",
      context: "colima",
    });
  });

  it("marks SkipTLSVerify contexts as TLS without verification", async () => {
    const configDir = await newConfigDir();
    await addContext(configDir, "lab", { Host: "tcp://lab:2376", SkipTLSVerify: true });
    const ep = await resolveDockerEndpoint({ env: { HOME, DOCKER_CONTEXT: "lab" }, configDir });
    expect(ep.tls).toEqual({ verify: false });
  });

  it("rejects an unknown context, naming it and the path looked at", async () => {
    const configDir = await newConfigDir();
    const err = await resolveDockerEndpoint({ env: { HOME, DOCKER_CONTEXT: "ghost" }, configDir }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toContain('"ghost"');
    expect(err.message).toContain(dockerContextPaths(configDir, "ghost").metaPath);
    expect(err.message).toContain("DOCKER_CONTEXT");
  });

  it("rejects a context whose meta.json is malformed", async () => {
    const configDir = await newConfigDir();
    const { metaPath } = dockerContextPaths(configDir, "bad");
    await mkdir(join(metaPath, ".."), { recursive: true });
    await writeFile(metaPath, "{nope");
    await expect(resolveDockerEndpoint({ env: { HOME, DOCKER_CONTEXT: "bad" }, configDir })).rejects.toThrow(
      /"bad".*not valid JSON/,
    );
  });

  it("treats the context named default as the default socket", async () => {
    const configDir = await newConfigDir({ currentContext: "default" });
    const ep = await resolveDockerEndpoint({
      env: { HOME, XDG_RUNTIME_DIR: XDG },
      configDir,
      exists: (p) => p === `${XDG}/docker.sock`,
    });
    expect(ep).toMatchObject({ host: `unix://${XDG}/docker.sock`, source: "default", context: "default" });
  });

  it("picks the first default socket that exists and reports what it tried", async () => {
    const configDir = await newConfigDir();
    const env = { HOME, XDG_RUNTIME_DIR: XDG };
    const desktop = `${HOME}/.docker/desktop/docker.sock`;
    const podman = "/run/podman/podman.sock";
    const checked: string[] = [];
    const ep = await resolveDockerEndpoint({
      env,
      configDir,
      exists: async (p) => {
        checked.push(p);
        return p === desktop || p === podman;
      },
    });
    expect(ep.host).toBe(`unix://${desktop}`);
    expect(ep.source).toBe("default");
    expect(ep.context).toBeUndefined();
    expect(ep.tried).toEqual(defaultSocketCandidates(env));
    expect(checked).toEqual(defaultSocketCandidates(env).slice(0, 4));
  });

  it("falls back to /var/run/docker.sock when no socket exists", async () => {
    const ep = await resolveDockerEndpoint({
      env: { HOME },
      configDir: await newConfigDir(),
      exists: nothingExists,
    });
    expect(ep.host).toBe(`unix://${DEFAULT_DOCKER_SOCKET}`);
    expect(ep.source).toBe("default");
  });
});
