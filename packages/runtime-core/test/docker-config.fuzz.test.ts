// Property tests of the Docker CLI's config.json reader: any bytes or JSON as config.json load or fail
// with a ValidationError that never quotes the file (it holds credentials); credentials are then found or
// refused typed. (Context stores: docker-context.fuzz.test.ts.) BERTH_FUZZ_RUNS sets the case count.

import { AssertionError } from "node:assert";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  expectTyped,
  fuzz,
  fuzzDir,
  smallJson as json,
  loose,
  must,
  typedOnly,
} from "../../../test/support/fuzz-harness.js";
import { resolveCredentials, ValidationError } from "../src/index.js";
import { type DockerConfig, loadDockerConfig } from "../src/internal.js";

const root = fuzzDir("config");

/** A marker that must never show up in an error: it stands for a password in the file. */
const MARKER = "Zq7-fuzz-secret-Xw9";
const b64 = (s: string) => Buffer.from(s).toString("base64");

const secretish = fc.oneof(
  fc.constant(MARKER),
  fc.string({ maxLength: 12 }).map((s) => `${s}${MARKER}`),
  fc.string({ maxLength: 12 }),
);
const authEntry = fc.record(
  {
    auth: loose(
      fc.oneof(
        secretish.map((p) => b64(`user:${p}`)),
        secretish.map(b64),
        secretish,
        fc.string({ unit: fc.constantFrom(..."AZaz09+/=-_"), maxLength: 16 }),
      ),
    ),
    username: loose(fc.string({ maxLength: 8 })),
    password: loose(secretish),
    identitytoken: loose(secretish),
    registrytoken: loose(secretish),
    serveraddress: loose(fc.string({ maxLength: 12 })),
  },
  { requiredKeys: [] },
);
const registryName = fc.oneof(
  fc.constantFrom(
    "docker.io",
    "https://index.docker.io/v1/",
    "index.docker.io",
    "registry-1.docker.io",
    "127.0.0.1:5000",
    "https://127.0.0.1:5000/v2/",
    "ghcr.io",
    "GHCR.IO",
  ),
  fc.string({ maxLength: 16 }),
);
/** Config objects shaped like the Docker CLI's, with wrong types and stray keys mixed in. */
const configObject = fc.record(
  {
    auths: loose(fc.dictionary(registryName, loose(authEntry), { maxKeys: 4 })),
    credsStore: loose(fc.string({ maxLength: 8 })),
    credHelpers: loose(fc.dictionary(registryName, loose(fc.string({ maxLength: 8 })), { maxKeys: 3 })),
    currentContext: loose(fc.string({ maxLength: 12 })),
    proxies: json,
  },
  { requiredKeys: [] },
);

/** Bytes for config.json: well-shaped JSON, any JSON, JSON cut or spliced, or noise. */
const configBytes = fc.oneof(
  configObject.map((c) => Buffer.from(JSON.stringify(c))),
  json.map((v) => Buffer.from(JSON.stringify(v) ?? "")),
  fc.tuple(configObject, fc.nat(), fc.string({ maxLength: 4 })).map(([c, at, junk]) => {
    const text = JSON.stringify(c);
    const i = at % (text.length + 1);
    return Buffer.from(text.slice(0, i) + junk + text.slice(i + (junk ? 1 : 0)));
  }),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  fc.string({ unit: "binary", maxLength: 100 }).map((s) => Buffer.from(s, "utf8")),
  fc
    .constantFrom("", " \n", "\ufeff{}", "null", "[]", '{"auths":null}', '{"__proto__":{"auths":1}}')
    .map((s) => Buffer.from(s)),
);

function messagesOf(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) parts.push(e.message, String(e.stack));
  return parts.join("\n");
}

describe("fuzz: Docker config.json", () => {
  const dir = join(root, "config");
  mkdirSync(dir);
  const env = { HOME: join(root, "nohome"), PATH: join(root, "empty-bin") };

  it("loadDockerConfig loads or throws ValidationError; credentials are then found or refused typed; nothing quoted", async () => {
    await fuzz(
      "docker-config loadDockerConfig + resolveCredentials",
      fc.tuple(configBytes, registryName),
      async ([bytes, registry]) => {
        writeFileSync(join(dir, "config.json"), bytes);
        const loaded = await typedOnly(() => loadDockerConfig({ configDir: dir, env }));
        if ("error" in loaded) {
          must(loaded.error).toBeInstanceOf(ValidationError);
          must(messagesOf(loaded.error)).not.toContain(MARKER);
          return;
        }
        const config = loaded.value;
        must(typeof config === "object" && config !== null && !Array.isArray(config)).toBe(true);
        for (const key of ["credsStore", "currentContext"] as const) {
          if (config[key] !== undefined) must(typeof config[key]).toBe("string");
        }
        // Helpers are programs: spawning one per case is the credential tests' job, not the fuzzer's.
        const { credsStore: _s, credHelpers: _h, ...rest } = config as DockerConfig;
        const got = await typedOnly(() => resolveCredentials(registry, { config: rest, env }));
        if ("error" in got) {
          must(messagesOf(got.error)).not.toContain(MARKER);
          return;
        }
        const creds = got.value;
        if (creds !== undefined) {
          must(typeof creds.serverAddress).toBe("string");
          for (const v of [creds.username, creds.password, creds.identityToken, creds.registryToken]) {
            if (v !== undefined) must(typeof v).toBe("string");
          }
        }
      },
    );
  });
});

describe("fuzz: the harness's checks", () => {
  it("expectTyped refuses an untyped error", () => {
    expect(() => expectTyped(new TypeError("x"))).toThrow(/untyped rejection/);
    expect(() => expectTyped(new ValidationError("x"))).not.toThrow();
  });

  it("must() fails where expect() would, and only there", () => {
    const fails = (fn: () => void) => expect(fn).toThrow(AssertionError);
    must(Number.NaN).toBe(Number.NaN);
    fails(() => must(0).toBe(-0));
    fails(() => must("1").toBe(1));
    must({ a: [1, { b: "x" }], c: undefined }).toEqual({ a: [1, { b: "x" }] });
    must(Object.assign(Object.create(null), { k: "v" })).toEqual({ k: "v" });
    fails(() => must({ a: [1, 2] }).toEqual({ a: [1] }));
    fails(() => must({ a: "1" }).toEqual({ a: 1 }));
    fails(() => must([1]).toEqual({ 0: 1 }));
    fails(() => must({ a: 1 }).toEqual({ a: 1, b: 2 }));
    must(Buffer.from("ab")).toEqual(new Uint8Array([97, 98]));
    fails(() => must(Buffer.from("ab")).toEqual(Buffer.from("ac")));
    must(new ValidationError("x")).toBeInstanceOf(ValidationError);
    fails(() => must(new TypeError("x")).toBeInstanceOf(ValidationError));
    must("abc").toMatch(/b/);
    fails(() => must("abc").toMatch("d"));
    must("abc").toContain("b");
    fails(() => must("abc").not.toContain("b"));
    must({ error: 1 }).toHaveProperty("error");
    fails(() => must({ value: 1 }).toHaveProperty("error"));
    fails(() => must({ error: 1 }).not.toHaveProperty("error"));
    must(1).toBeLessThan(2);
    fails(() => must(2).toBeLessThan(2));
    must(2).toBeLessThanOrEqual(2);
    fails(() => must(3).toBeLessThanOrEqual(2));
    must(() => {
      throw new ValidationError("bad");
    }).toThrow(ValidationError);
    fails(() => must(() => {}).toThrow(/x/));
    fails(() => must(() => must(1).toBe(2)).not.toThrow());
    expect(() => must(1, "the count").toBe(2)).toThrow(/^the count: expected 1 to be 2$/);
  });
});
