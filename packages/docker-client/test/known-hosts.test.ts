// known_hosts as OpenSSH reads it, with real keys made by ssh-keygen: a revoked key is never accepted
// (even where another line lists it), a host trusted through a certificate authority is refused with a
// clear reason, and hashed, wildcard and negated host entries keep working.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { knownHostsAccepts, knownHostsVerdict, type SshTarget } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "berth-known-hosts-"));
/** "type base64" of each key, and its blob. */
const keys: Record<string, { line: string; blob: Buffer }> = {};

beforeAll(() => {
  for (const name of ["host", "other", "ca"]) {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", join(dir, name)]);
    const [type, b64] = readFileSync(join(dir, `${name}.pub`), "utf8")
      .trim()
      .split(/\s+/) as [string, string];
    keys[name] = { line: `${type} ${b64}`, blob: Buffer.from(b64, "base64") };
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const key = (name: string) => keys[name] as { line: string; blob: Buffer };
const on22: SshTarget = { username: "u", host: "docker.example.com", port: 22 };
const on2222: SshTarget = { username: "u", host: "docker.example.com", port: 2222 };

/** A known_hosts text hashed by ssh-keygen -H, as `HashKnownHosts yes` writes it. */
function hashed(text: string): string {
  const file = join(dir, `kh-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, text);
  execFileSync("ssh-keygen", ["-q", "-H", "-f", file], { stdio: "ignore" });
  return readFileSync(file, "utf8");
}

describe("known_hosts", () => {
  it("accepts a listed key, plain or hashed, on port 22 and on another port", () => {
    const text = `docker.example.com ${key("host").line}\n[docker.example.com]:2222 ${key("host").line}\n`;
    for (const t of [text, hashed(text)]) {
      expect(t).toContain(t === text ? "docker.example.com" : "|1|");
      expect(knownHostsVerdict(t, on22, key("host").blob)).toBe("known");
      expect(knownHostsVerdict(t, on2222, key("host").blob)).toBe("known");
      expect(knownHostsVerdict(t, on22, key("other").blob)).toBe("unknown");
      expect(knownHostsVerdict(t, { ...on22, host: "elsewhere.example.com" }, key("host").blob)).toBe(
        "unknown",
      );
    }
  });

  it("refuses a key marked @revoked even where another line lists it, plain or hashed", () => {
    const listed = `docker.example.com ${key("host").line}\n`;
    for (const revoked of [
      `@revoked * ${key("host").line}\n`,
      `@revoked docker.example.com ${key("host").line}\n`,
    ]) {
      for (const text of [listed + revoked, revoked + listed, hashed(listed) + revoked]) {
        expect(knownHostsVerdict(text, on22, key("host").blob)).toBe("revoked");
        expect(knownHostsAccepts(text, on22, key("host").blob)).toBe(false);
      }
    }
    // Another key revoked leaves this one accepted.
    expect(knownHostsVerdict(`${listed}@revoked * ${key("other").line}\n`, on22, key("host").blob)).toBe(
      "known",
    );
  });

  it("refuses a host trusted only through @cert-authority, naming why; the CA key itself is no host key", () => {
    const text = `@cert-authority *.example.com ${key("ca").line}\n`;
    expect(knownHostsVerdict(text, on22, key("host").blob)).toBe("certificate");
    expect(knownHostsVerdict(text, on22, key("ca").blob)).toBe("certificate");
    expect(knownHostsVerdict(text, { ...on22, host: "docker.example.org" }, key("host").blob)).toBe(
      "unknown",
    );
    // A host whose own key is listed as well is accepted by that key.
    expect(knownHostsVerdict(`${text}docker.example.com ${key("host").line}\n`, on22, key("host").blob)).toBe(
      "known",
    );
  });

  it("matches wildcard and negated host patterns as OpenSSH does", () => {
    const text = `*.example.com,!bad.example.com ${key("host").line}\n`;
    expect(knownHostsVerdict(text, on22, key("host").blob)).toBe("known");
    expect(knownHostsVerdict(text, { ...on22, host: "bad.example.com" }, key("host").blob)).toBe("unknown");
    expect(knownHostsVerdict(`docker.example.co? ${key("host").line}`, on22, key("host").blob)).toBe("known");
    expect(knownHostsVerdict(`DOCKER.example.com ${key("host").line}`, on22, key("host").blob)).toBe("known");
  });
});
