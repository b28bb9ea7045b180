import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AbortedError,
  credentialsForImage,
  DOCKER_HUB_AUTH_SERVER,
  encodeDockerAuthHeader,
  ProtocolError,
  registryOf,
  resolveCredentials,
  TimeoutError,
  UnauthorizedError,
  ValidationError,
} from "../src/index.js";
import { loadDockerConfig } from "../src/internal.js";

let root: string;
let bin: string;
let n = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-creds-"));
  bin = join(root, "bin");
  await mkdir(bin);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** A fresh config dir holding config.json (object → JSON, string → written verbatim). */
async function configDir(config: unknown): Promise<string> {
  const dir = join(root, `cfg-${++n}`);
  await mkdir(dir);
  await writeFile(join(dir, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
  return dir;
}

/** docker-credential-<name> in bin: records its argv and stdin next to itself, then runs body. */
async function helper(name: string, body: string): Promise<{ stdinFile: string; argsFile: string }> {
  const stdinFile = join(bin, `${name}.stdin`);
  const argsFile = join(bin, `${name}.args`);
  const path = join(bin, `docker-credential-${name}`);
  await writeFile(path, `#!/bin/sh\necho "$@" > '${argsFile}'\ncat > '${stdinFile}'\n${body}\n`);
  await chmod(path, 0o755);
  return { stdinFile, argsFile };
}

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: `${bin}:/usr/bin:/bin`, HOME: join(root, "nohome"), ...extra };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

describe("loadDockerConfig", () => {
  it("treats a missing file as an empty config", async () => {
    expect(await loadDockerConfig({ configDir: join(root, "does-not-exist"), env: env() })).toEqual({});
  });

  it("reads $DOCKER_CONFIG/config.json, else ~/.docker/config.json", async () => {
    const dir = await configDir({ credsStore: "from-docker-config" });
    expect((await loadDockerConfig({ env: env({ DOCKER_CONFIG: dir }) })).credsStore).toBe(
      "from-docker-config",
    );

    const home = join(root, `home-${++n}`);
    await mkdir(join(home, ".docker"), { recursive: true });
    await writeFile(join(home, ".docker", "config.json"), JSON.stringify({ credsStore: "from-home" }));
    expect((await loadDockerConfig({ env: { HOME: home } })).credsStore).toBe("from-home");
    // An explicit configDir beats DOCKER_CONFIG.
    expect(
      (await loadDockerConfig({ configDir: join(home, ".docker"), env: env({ DOCKER_CONFIG: dir }) }))
        .credsStore,
    ).toBe("from-home");
  });

  it("accepts an empty file", async () => {
    expect(await loadDockerConfig({ configDir: await configDir("  \n"), env: env() })).toEqual({});
  });

  it("rejects malformed JSON naming the file but not quoting its content", async () => {
    const dir = await configDir('{"auths": {"x": {"auth": "c2VjcmV0LXZhbHVl"}}, oops');
    const err = await rejection(loadDockerConfig({ configDir: dir, env: env() }));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toContain(join(dir, "config.json"));
    expect(err.message).toMatch(/not valid JSON/);
    expect(err.message).not.toContain("c2VjcmV0");
  });

  it("rejects a config with the wrong shape", async () => {
    const dir = await configDir({ auths: [] });
    await expect(loadDockerConfig({ configDir: dir, env: env() })).rejects.toThrow(
      /"auths" must be an object/,
    );
    const dir2 = await configDir({ credHelpers: { "gcr.io": 5 } });
    await expect(loadDockerConfig({ configDir: dir2, env: env() })).rejects.toThrow(ValidationError);
  });
});

describe("resolveCredentials from auths", () => {
  it("decodes the base64 auth field, splitting at the first colon", async () => {
    const dir = await configDir({ auths: { "ghcr.io": { auth: b64("me:pa:ss") } } });
    expect(await resolveCredentials("ghcr.io", { configDir: dir, env: env() })).toEqual({
      username: "me",
      password: "pa:ss",
      serverAddress: "ghcr.io",
    });
  });

  it("matches Docker Hub under all its names", async () => {
    const dir = await configDir({ auths: { [DOCKER_HUB_AUTH_SERVER]: { auth: b64("hubuser:hubpass") } } });
    for (const name of [
      "docker.io",
      "index.docker.io",
      "registry-1.docker.io",
      "https://index.docker.io/v1/",
    ]) {
      expect(await resolveCredentials(name, { configDir: dir, env: env() }), name).toEqual({
        username: "hubuser",
        password: "hubpass",
        serverAddress: DOCKER_HUB_AUTH_SERVER,
      });
    }
    const short = await configDir({ auths: { "docker.io": { username: "u", password: "p" } } });
    expect(await resolveCredentials("docker.io", { configDir: short, env: env() })).toMatchObject({
      username: "u",
    });
  });

  it("matches keys with a scheme and path, but not another port", async () => {
    const dir = await configDir({
      auths: { "https://127.0.0.1:5000/v2/": { username: "u", password: "p" } },
    });
    expect(await resolveCredentials("127.0.0.1:5000", { configDir: dir, env: env() })).toEqual({
      username: "u",
      password: "p",
      serverAddress: "127.0.0.1:5000",
    });
    expect(await resolveCredentials("127.0.0.1:5001", { configDir: dir, env: env() })).toBeUndefined();
    expect(await resolveCredentials("docker.io", { configDir: dir, env: env() })).toBeUndefined();
  });

  it("returns identity tokens and skips empty entries", async () => {
    const dir = await configDir({
      auths: { "quay.io": { identitytoken: "refresh-tok" }, "empty.example": {} },
    });
    expect(await resolveCredentials("quay.io", { configDir: dir, env: env() })).toEqual({
      identityToken: "refresh-tok",
      serverAddress: "quay.io",
    });
    expect(await resolveCredentials("empty.example", { configDir: dir, env: env() })).toBeUndefined();
  });

  it("uses a given config without reading any file", async () => {
    const config = { auths: { "r.example": { username: "a", password: "b" } } };
    expect(await resolveCredentials("r.example", { config, configDir: join(root, "nope") })).toMatchObject({
      username: "a",
    });
  });

  it("rejects an auth field that is not user:password, without echoing it", async () => {
    const dir = await configDir({ auths: { "r.example": { auth: b64("justasecret") } } });
    const err = await rejection(resolveCredentials("r.example", { configDir: dir, env: env() }));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toContain("r.example");
    expect(err.message).not.toContain("justasecret");
    expect(err.message).not.toContain(b64("justasecret"));
  });
});

describe("resolveCredentials with credential helpers", () => {
  it("runs docker-credential-<name> get with the server address on stdin", async () => {
    const h = await helper(
      "test",
      `echo '{"ServerURL":"x","Username":"helper-user","Secret":"helper-pass"}'`,
    );
    const dir = await configDir({ credHelpers: { "127.0.0.1:5000": "test" } });
    expect(await resolveCredentials("127.0.0.1:5000", { configDir: dir, env: env() })).toEqual({
      username: "helper-user",
      password: "helper-pass",
      serverAddress: "127.0.0.1:5000",
    });
    expect((await readFile(h.argsFile, "utf8")).trim()).toBe("get");
    expect(await readFile(h.stdinFile, "utf8")).toBe("127.0.0.1:5000");
  });

  it("asks about Docker Hub by its legacy auth server URL", async () => {
    const h = await helper("hub", `echo '{"Username":"u","Secret":"s"}'`);
    const dir = await configDir({ credsStore: "hub" });
    expect(await resolveCredentials("docker.io", { configDir: dir, env: env() })).toMatchObject({
      username: "u",
      serverAddress: DOCKER_HUB_AUTH_SERVER,
    });
    expect(await readFile(h.stdinFile, "utf8")).toBe(DOCKER_HUB_AUTH_SERVER);
  });

  it("reads username <token> as an identity token", async () => {
    await helper("tok", `echo '{"Username":"<token>","Secret":"id-token-value"}'`);
    const dir = await configDir({ credsStore: "tok" });
    expect(await resolveCredentials("ghcr.io", { configDir: dir, env: env() })).toEqual({
      identityToken: "id-token-value",
      serverAddress: "ghcr.io",
    });
  });

  it("prefers credHelpers over credsStore over auths", async () => {
    await helper("first", `echo '{"Username":"from-credhelpers","Secret":"1"}'`);
    await helper("second", `echo '{"Username":"from-credsstore","Secret":"2"}'`);
    const auths = { "r.example": { username: "from-auths", password: "3" } };
    const all = await configDir({ credHelpers: { "r.example": "first" }, credsStore: "second", auths });
    const noHelper = await configDir({
      credHelpers: { "other.example": "first" },
      credsStore: "second",
      auths,
    });
    const onlyAuths = await configDir({ auths });
    const opts = (dir: string) => ({ configDir: dir, env: env() });
    expect((await resolveCredentials("r.example", opts(all)))?.username).toBe("from-credhelpers");
    expect((await resolveCredentials("r.example", opts(noHelper)))?.username).toBe("from-credsstore");
    expect((await resolveCredentials("r.example", opts(onlyAuths)))?.username).toBe("from-auths");
  });

  it("passes to the next source when a helper has nothing stored", async () => {
    await helper("empty", `echo "credentials not found in native keychain"\nexit 1`);
    const fallback = await configDir({
      credsStore: "empty",
      auths: { "r.example": { auth: b64("file-user:file-pass") } },
    });
    expect((await resolveCredentials("r.example", { configDir: fallback, env: env() }))?.username).toBe(
      "file-user",
    );
    const nothing = await configDir({ credsStore: "empty", auths: { "r.example": {} } });
    expect(await resolveCredentials("r.example", { configDir: nothing, env: env() })).toBeUndefined();
  });

  it("reports a missing helper program by name", async () => {
    const dir = await configDir({ credsStore: "nosuchhelper" });
    const err = await rejection(resolveCredentials("r.example", { configDir: dir, env: env() }));
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect(err.message).toContain("docker-credential-nosuchhelper");
    expect(err.message).toMatch(/not found on PATH/);
    expect(err.message).toContain("credsStore");
  });

  it("times out a helper that hangs", async () => {
    const pidFile = join(bin, "slow.pid");
    await helper("slow", `echo $$ > '${pidFile}'\nexec sleep 5`);
    const dir = await configDir({ credsStore: "slow" });
    const started = Date.now();
    const err = await rejection(
      resolveCredentials("r.example", { configDir: dir, env: env(), helperTimeoutMs: 200 }),
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toContain("docker-credential-slow");
    expect(Date.now() - started).toBeLessThan(3000);
    // The helper was killed, not left running.
    const pid = Number(await readFile(pidFile, "utf8"));
    await expect.poll(() => isRunning(pid), { timeout: 2000 }).toBe(false);
  });

  it("stops a helper when the signal aborts", async () => {
    const pidFile = join(bin, "slow2.pid");
    await helper("slow2", `echo $$ > '${pidFile}'\nexec sleep 5`);
    const dir = await configDir({ credsStore: "slow2" });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const err = await rejection(
      resolveCredentials("r.example", { configDir: dir, env: env(), signal: ac.signal }),
    );
    expect(err).toBeInstanceOf(AbortedError);
    const pid = Number(await readFile(pidFile, "utf8"));
    await expect.poll(() => isRunning(pid), { timeout: 2000 }).toBe(false);
  });

  it("reports a failing helper with its message", async () => {
    await helper("broken", `echo "keychain is locked" >&2\nexit 3`);
    const dir = await configDir({ credsStore: "broken" });
    const err = await rejection(resolveCredentials("r.example", { configDir: dir, env: env() }));
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect(err.message).toMatch(
      /docker-credential-broken failed for r\.example \(exit code 3\): keychain is locked/,
    );
  });

  it("does not echo a helper's unparseable output, which may hold the secret", async () => {
    await helper("garbled", `echo '{"Username":"u","Secret":"top-secret-value"'`);
    const dir = await configDir({ credsStore: "garbled" });
    const err = await rejection(resolveCredentials("r.example", { configDir: dir, env: env() }));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).not.toContain("top-secret-value");
  });

  it("refuses helper names that are paths", async () => {
    const dir = await configDir({ credsStore: "../../bin/sh" });
    await expect(resolveCredentials("r.example", { configDir: dir, env: env() })).rejects.toThrow(
      ValidationError,
    );
  });
});

describe("encodeDockerAuthHeader", () => {
  const decode = (h: string) =>
    JSON.parse(Buffer.from(h.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString());

  it("encodes username, password and server address as URL-safe base64 JSON", () => {
    // Chosen so that standard base64 would contain "+" and "/".
    const creds = { username: "u>>>", password: "p???~~~", serverAddress: DOCKER_HUB_AUTH_SERVER };
    const header = encodeDockerAuthHeader(creds);
    const body = { username: "u>>>", password: "p???~~~", serveraddress: DOCKER_HUB_AUTH_SERVER };
    const standard = Buffer.from(JSON.stringify(body)).toString("base64");
    expect(standard).toMatch(/[+/]/);
    expect(header).toBe(standard.replace(/\+/g, "-").replace(/\//g, "_"));
    expect(header).not.toMatch(/[+/]/);
    expect(decode(header)).toEqual({
      username: "u>>>",
      password: "p???~~~",
      serveraddress: DOCKER_HUB_AUTH_SERVER,
    });
  });

  it("sends only the identity token when there is one", () => {
    const header = encodeDockerAuthHeader({ identityToken: "tok", username: "x", serverAddress: "ghcr.io" });
    expect(decode(header)).toEqual({ identitytoken: "tok" });
  });
});

describe("credentialsForImage: credentials go only to the registry they name", () => {
  const op = { operation: "pull", backend: "test" };
  const creds = (serverAddress?: string) => ({
    username: "u",
    password: "p4ss-word",
    ...(serverAddress === undefined ? {} : { serverAddress }),
  });

  it("normalizes addresses as Docker does: Hub under all its names, host:port exactly", () => {
    for (const hub of [
      "docker.io",
      "index.docker.io",
      "registry-1.docker.io",
      DOCKER_HUB_AUTH_SERVER,
      "Docker.IO",
    ])
      expect(registryOf(hub), hub).toBe("docker.io");
    expect(registryOf("https://127.0.0.1:5000/v2/")).toBe("127.0.0.1:5000");
    expect(registryOf("user:secret@ghcr.io")).toBe("ghcr.io");
    expect(registryOf("127.0.0.1:5000")).not.toBe(registryOf("127.0.0.1:5001"));
    expect(registryOf("myreg:443")).not.toBe(registryOf("myreg"));
  });

  it("keeps credentials for the image's own registry", () => {
    for (const hub of ["docker.io", "index.docker.io", DOCKER_HUB_AUTH_SERVER]) {
      expect(credentialsForImage("busybox", creds(hub), op).serverAddress).toBe(hub);
      expect(credentialsForImage("index.docker.io/library/busybox", creds(hub), op).serverAddress).toBe(hub);
    }
    expect(credentialsForImage("127.0.0.1:5000/app:1", creds("http://127.0.0.1:5000/"), op)).toEqual(
      creds("http://127.0.0.1:5000/"),
    );
  });

  it("gives credentials without serverAddress the image's registry", () => {
    expect(credentialsForImage("busybox", creds(), op).serverAddress).toBe(DOCKER_HUB_AUTH_SERVER);
    expect(credentialsForImage("ghcr.io/org/app:1", creds(), op).serverAddress).toBe("ghcr.io");
    expect(credentialsForImage("127.0.0.1:5001/app", creds(""), op).serverAddress).toBe("127.0.0.1:5001");
  });

  it("refuses credentials for another registry, naming both and not the secret", () => {
    const cases: Array<[image: string, serverAddress: string]> = [
      ["evil.example/app:1", DOCKER_HUB_AUTH_SERVER],
      ["evil.example/app:1", "ghcr.io"],
      ["busybox", "ghcr.io"],
      ["127.0.0.1:5001/app", "127.0.0.1:5000"],
      ["myreg/app", "myreg:443"],
    ];
    for (const [image, serverAddress] of cases) {
      let err: unknown;
      try {
        credentialsForImage(image, creds(serverAddress), op);
      } catch (e) {
        err = e;
      }
      expect(err, `${image} with ${serverAddress}`).toBeInstanceOf(UnauthorizedError);
      const message = (err as Error).message;
      expect(message).toContain(registryOf(serverAddress));
      expect(message).toContain("not sent to another registry");
      expect(message).not.toContain("p4ss-word");
      expect(err).toMatchObject({ operation: "pull", backend: "test" });
    }
  });

  it("refuses what is not credentials with a ValidationError", () => {
    for (const bad of [null, "user:pass", 5, [], { serverAddress: 5 }]) {
      expect(() => credentialsForImage("busybox", bad as never, op), JSON.stringify(bad)).toThrow(
        ValidationError,
      );
    }
  });
});
