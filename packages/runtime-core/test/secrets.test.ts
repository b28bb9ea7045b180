// Credentials never leak into what a failure leaves behind: each credential path of runtime-core is driven
// to failure with a unique password, and the error (message, stack, causes, inspected, serialized) and
// everything printed meanwhile are grepped for the password in each form it travels in.
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeSecret, SecretScan } from "../../../test/support/secret-scan.js";
import {
  type BerthError,
  ProtocolError,
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
  root = await mkdtemp(join(tmpdir(), "berth-secrets-"));
  bin = join(root, "bin");
  await mkdir(bin);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString("base64");

async function configDir(config: unknown): Promise<string> {
  const dir = join(root, `cfg-${++n}`);
  await mkdir(dir);
  await writeFile(join(dir, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
  return dir;
}

/** docker-credential-<name>: a shell script reading its stdin, then running `body`. */
async function helper(name: string, body: string): Promise<void> {
  const path = join(bin, `docker-credential-${name}`);
  await writeFile(path, `#!/bin/sh\ncat > /dev/null\n${body}\n`);
  await chmod(path, 0o755);
}

const env = () => ({ PATH: `${bin}:/usr/bin:/bin`, HOME: join(root, "nohome") });

describe("secrets: credential helpers", () => {
  it("a helper that fails, hangs, crashes or prints garbage never puts the secret in the error", async () => {
    const s = makeSecret("helper");
    const reply = JSON.stringify({ ServerURL: "ghcr.io", Username: s.user, Secret: s.password });
    const scan = new SecretScan([s]);
    const cases: Array<[name: string, body: string, expected: abstract new (...a: never[]) => BerthError]> = [
      // Printed the credentials, then failed: the reply is the secret itself.
      ["reply-then-exit1", `echo '${reply}'\nexit 1`, UnauthorizedError],
      ["reply-on-stderr-exit1", `echo '${reply}' >&2\nexit 3`, UnauthorizedError],
      [
        "reply-pretty-exit1",
        `printf '{\\n  "Username": "${s.user}",\\n  "Secret": "${s.password}"\\n}\\n'\nexit 1`,
        UnauthorizedError,
      ],
      // Exit 0 with something that is not the protocol's JSON object.
      ["garbage-exit0", `echo 'Secret: ${s.password} (not json'`, ProtocolError],
      ["truncated-json-exit0", `printf '%s' '${reply.slice(0, -2)}'`, ProtocolError],
      ["huge-output", `yes '${s.password}' | head -c 2000000`, ProtocolError],
      ["killed", `echo '${reply}'\nkill -9 $$`, UnauthorizedError],
      ["hangs", `echo '${reply}'\nsleep 30`, TimeoutError],
    ];
    for (const [name, body, expected] of cases) {
      await helper(name, body);
      const dir = await configDir({ credHelpers: { "ghcr.io": name } });
      const err = await scan.failing(`credHelpers ${name}`, () =>
        resolveCredentials("ghcr.io", { configDir: dir, env: env(), helperTimeoutMs: 1500 }),
      );
      expect(err, name).toBeInstanceOf(expected);
    }
    // A helper's plain error message is still worth showing.
    await helper("plain-error", "echo 'error getting credentials - keychain locked'\nexit 1");
    const dir = await configDir({ credsStore: "plain-error" });
    const err = await scan.failing("credsStore plain-error", () =>
      resolveCredentials("ghcr.io", { configDir: dir, env: env() }),
    );
    expect((err as Error).message).toContain("keychain locked");
    scan.report("runtime-core credential helpers");
  }, 30_000);
});

describe("secrets: config.json auths", () => {
  it("a malformed config or auths entry holding the secret is refused without quoting it", async () => {
    const s = makeSecret("config");
    const scan = new SecretScan([s]);
    const good = { auth: b64(`${s.user}:${s.password}`) };
    const configs: Array<[name: string, config: unknown]> = [
      ["not JSON (cut)", JSON.stringify({ auths: { "ghcr.io": good } }).slice(0, -3)],
      ["not JSON (junk)", `${JSON.stringify({ auths: { "ghcr.io": good } })} ${s.password}`],
      ["password unquoted", `{"auths":{"ghcr.io":{"username":"${s.user}","password":${s.password}}}}`],
      ["password not a string", { auths: { "ghcr.io": { username: s.user, password: [s.password] } } }],
      ["auth not a string", { auths: { "ghcr.io": { auth: { value: b64(`${s.user}:${s.password}`) } } } }],
      ["identitytoken not a string", { auths: { "ghcr.io": { identitytoken: { t: s.password } } } }],
      ["entry not an object", { auths: { "ghcr.io": `${s.user}:${s.password}` } }],
      ["auths not an object", { auths: [s.password] }],
      ["credsStore not a string", { credsStore: { secret: s.password }, auths: { "ghcr.io": good } }],
      ["array", [good]],
    ];
    for (const [name, config] of configs) {
      const dir = await configDir(config);
      const err = await scan.failing(`config.json ${name}`, () =>
        loadDockerConfig({ configDir: dir, env: env() }),
      );
      expect(err, name).toBeInstanceOf(ValidationError);
      await scan.failing(`resolveCredentials, config.json ${name}`, () =>
        resolveCredentials("ghcr.io", { configDir: dir, env: env() }),
      );
    }
    // "auth" that is not base64 of user:password.
    const bad = await configDir({ auths: { "ghcr.io": { auth: b64(s.password) } } });
    const refused = await scan.failing("config.json auth = base64(password)", () =>
      resolveCredentials("ghcr.io", { configDir: bad, env: env() }),
    );
    expect(refused).toBeInstanceOf(ValidationError);
    // A broken credential store in front of a good auths entry.
    const dir = await configDir({ credsStore: "missing-helper", auths: { "ghcr.io": good } });
    const err = await scan.failing("credsStore missing, auths present", () =>
      resolveCredentials("ghcr.io", { configDir: dir, env: env() }),
    );
    expect(err).toBeInstanceOf(UnauthorizedError);
    scan.report("runtime-core config.json auths");
  });
});
