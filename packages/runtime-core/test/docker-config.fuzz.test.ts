// Property tests of the Docker CLI readers: any bytes or JSON as config.json load or fail with a
// ValidationError that never quotes the file (it holds credentials); credentials are then found or refused
// typed; any meta.json in a context store resolves to its Host or fails typed. BERTH_FUZZ_RUNS sets the
// case count.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { expectTyped, fuzz, typedOnly } from "../../../test/support/fuzz-harness.js";
import {
  type DockerConfig,
  dockerContextPaths,
  loadDockerConfig,
  resolveCredentials,
  resolveDockerEndpoint,
  ValidationError,
} from "../src/index.js";

// Every case writes a file: on tmpfs that costs a tenth of what it does on disk.
const root = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "berth-fuzz-config-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A marker that must never show up in an error: it stands for a password in the file. */
const MARKER = "Zq7-fuzz-secret-Xw9";
const b64 = (s: string) => Buffer.from(s).toString("base64");

const json = fc.jsonValue({ maxDepth: 2 });
/** A value of any JSON type, biased towards what each field should hold. */
const loose = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: json });
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
          expect(loaded.error).toBeInstanceOf(ValidationError);
          expect(messagesOf(loaded.error)).not.toContain(MARKER);
          return;
        }
        const config = loaded.value;
        expect(typeof config === "object" && config !== null && !Array.isArray(config)).toBe(true);
        for (const key of ["credsStore", "currentContext"] as const) {
          if (config[key] !== undefined) expect(typeof config[key]).toBe("string");
        }
        // Helpers are programs: spawning one per case is the credential tests' job, not the fuzzer's.
        const { credsStore: _s, credHelpers: _h, ...rest } = config as DockerConfig;
        const got = await typedOnly(() => resolveCredentials(registry, { config: rest, env }));
        if ("error" in got) {
          expect(messagesOf(got.error)).not.toContain(MARKER);
          return;
        }
        const creds = got.value;
        if (creds !== undefined) {
          expect(typeof creds.serverAddress).toBe("string");
          for (const v of [creds.username, creds.password, creds.identityToken, creds.registryToken]) {
            if (v !== undefined) expect(typeof v).toBe("string");
          }
        }
      },
    );
  });
});

describe("fuzz: Docker contexts", () => {
  const env = { HOME: join(root, "nohome") };
  const exists = () => false;

  const meta = fc.record(
    {
      Name: loose(fc.string({ maxLength: 8 })),
      Metadata: json,
      Endpoints: loose(
        fc.record(
          {
            docker: loose(
              fc.record(
                {
                  Host: loose(
                    fc.oneof(
                      fc.constantFrom("unix:///var/run/docker.sock", "tcp://10.0.0.1:2376", "ssh://u@h", ""),
                      fc.string({ maxLength: 20 }),
                    ),
                  ),
                  SkipTLSVerify: loose(fc.boolean()),
                },
                { requiredKeys: [] },
              ),
            ),
          },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: [] },
  );
  const metaBytes = fc.oneof(
    { weight: 4, arbitrary: meta.map((m) => ({ m, bytes: Buffer.from(JSON.stringify(m)) })) },
    {
      weight: 1,
      arbitrary: fc
        .oneof(
          json.map((v) => JSON.stringify(v) ?? ""),
          fc.string({ unit: "binary", maxLength: 80 }),
          meta.map((m) => JSON.stringify(m).slice(0, -1)),
        )
        .map((s) => ({ m: undefined, bytes: Buffer.from(s, "utf8") })),
    },
  );

  it("any meta.json resolves to its docker Host or throws ValidationError", async () => {
    // One context name per case would leave 100,000 directories: names are fuzzed separately below.
    // Two stores: one selects the context by DOCKER_CONTEXT, the other by currentContext in config.json.
    const name = "fuzzed";
    const stores = [
      { dir: join(root, "contexts-by-env"), env: { ...env, DOCKER_CONTEXT: name } },
      { dir: join(root, "contexts-by-config"), env },
    ] as const;
    const metaPaths = stores.map(({ dir }) => dockerContextPaths(dir, name).metaPath);
    for (const path of metaPaths) mkdirSync(dirname(path), { recursive: true });
    writeFileSync(join(stores[1].dir, "config.json"), JSON.stringify({ currentContext: name }));
    await fuzz(
      "docker-endpoint context meta.json",
      fc.tuple(metaBytes, fc.constantFrom(0, 1)),
      async ([{ m, bytes }, which]) => {
        const store = stores[which];
        writeFileSync(metaPaths[which] as string, bytes);
        const got = await typedOnly(() =>
          resolveDockerEndpoint({ configDir: store.dir, exists, env: store.env }),
        );
        const docker = (
          m as { Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } } } | undefined
        )?.Endpoints?.docker;
        const host = typeof docker === "object" && docker !== null ? docker.Host : undefined;
        if ("error" in got) {
          expect(got.error).toBeInstanceOf(ValidationError);
          // Refused only when there is no usable Host (or the file is not JSON at all).
          if (m !== undefined) expect(typeof host === "string" && host !== "").toBe(false);
          return;
        }
        const endpoint = got.value;
        expect(endpoint.source).toBe("context");
        expect(endpoint.context).toBe(name);
        if (m !== undefined) expect(endpoint.host).toBe(host);
        const skip = typeof docker === "object" && docker !== null && docker.SkipTLSVerify === true;
        // No TLS files in this store: TLS settings only when the context asks to skip verification.
        expect(endpoint.tls).toEqual(skip ? { verify: false } : undefined);
      },
    );
  });

  it("any context name either resolves through its own meta.json or is a ValidationError naming the path", async () => {
    const configDir = join(root, "contexts-by-name");
    mkdirSync(configDir);
    await fuzz(
      "docker-endpoint context names",
      fc.tuple(fc.string({ unit: "binary", maxLength: 30 }), fc.boolean()),
      async ([name, present]) => {
        const { metaPath } = dockerContextPaths(configDir, name);
        if (present) {
          mkdirSync(dirname(metaPath), { recursive: true });
          writeFileSync(
            metaPath,
            JSON.stringify({ Name: name, Endpoints: { docker: { Host: "tcp://h:1" } } }),
          );
        }
        try {
          const got = await typedOnly(() =>
            resolveDockerEndpoint({ configDir, exists, env: { ...env, DOCKER_CONTEXT: name } }),
          );
          if ("error" in got) {
            expect(got.error).toBeInstanceOf(ValidationError);
            expect(present).toBe(false);
            expect(got.error.message).toContain(metaPath);
            return;
          }
          // "" selects nothing and "default" is the default sockets; any other name reads its meta.json.
          if (name === "" || name === "default") expect(got.value.source).toBe("default");
          else {
            expect(present).toBe(true);
            expect(got.value.host).toBe("tcp://h:1");
          }
        } finally {
          if (present) rmSync(dirname(metaPath), { recursive: true, force: true });
        }
      },
    );
  });
});

describe("fuzz: typed-error guard", () => {
  it("expectTyped refuses an untyped error", () => {
    expect(() => expectTyped(new TypeError("x"))).toThrow(/untyped rejection/);
    expect(() => expectTyped(new ValidationError("x"))).not.toThrow();
  });
});
