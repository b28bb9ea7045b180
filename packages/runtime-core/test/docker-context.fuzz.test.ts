// Property tests of the Docker CLI's context store reader: any meta.json resolves to its docker Host or
// fails with a ValidationError, and any context name resolves through its own meta.json or fails naming
// the path. (config.json: docker-config.fuzz.test.ts; a file of its own so both run in parallel.)
// BERTH_FUZZ_RUNS sets the case count.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { describe, it } from "vitest";
import {
  fuzz,
  fuzzDir,
  smallJson as json,
  loose,
  must,
  typedOnly,
} from "../../../test/support/fuzz-harness.js";
import { ValidationError } from "../src/index.js";
import { dockerContextPaths, resolveDockerEndpoint } from "../src/internal.js";

const root = fuzzDir("context");

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
          must(got.error).toBeInstanceOf(ValidationError);
          // Refused only when there is no usable Host (or the file is not JSON at all).
          if (m !== undefined) must(typeof host === "string" && host !== "").toBe(false);
          return;
        }
        const endpoint = got.value;
        must(endpoint.source).toBe("context");
        must(endpoint.context).toBe(name);
        if (m !== undefined) must(endpoint.host).toBe(host);
        const skip = typeof docker === "object" && docker !== null && docker.SkipTLSVerify === true;
        // No TLS files in this store: TLS settings only when the context asks to skip verification.
        must(endpoint.tls).toEqual(skip ? { verify: false } : undefined);
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
            must(got.error).toBeInstanceOf(ValidationError);
            must(present).toBe(false);
            must(got.error.message).toContain(metaPath);
            return;
          }
          // "" selects nothing and "default" is the default sockets; any other name reads its meta.json.
          if (name === "" || name === "default") must(got.value.source).toBe("default");
          else {
            must(present).toBe(true);
            must(got.value.host).toBe("tcp://h:1");
          }
        } finally {
          if (present) rmSync(dirname(metaPath), { recursive: true, force: true });
        }
      },
    );
  });
});
