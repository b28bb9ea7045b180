import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BackendName,
  connectRuntime,
  discoverRuntimes,
  NoRuntimeError,
  type Runtime,
  type RuntimeCandidate,
  type RuntimeProvider,
  TimeoutError,
  UnavailableError,
  ValidationError,
} from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "berth-connect-"));
const live = join(dir, "live.sock");
const server = createServer();
beforeAll(() => new Promise<void>((r) => server.listen(live, r)));
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const opened: string[] = [];
const closed: string[] = [];

/** A fake Runtime whose info() answers, fails or never returns. */
function fake(
  backend: BackendName,
  endpoint: string,
  behaviour: "ok" | "fail" | "hang",
): RuntimeCandidate["open"] {
  return async () => {
    opened.push(`${backend} ${endpoint}`);
    return {
      backend,
      info: ({ signal }: { signal?: AbortSignal } = {}) => {
        if (behaviour === "ok") return Promise.resolve({ backend, name: backend, version: "1" });
        if (behaviour === "fail") return Promise.reject(new UnavailableError("connection refused"));
        return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
      },
      close: async () => {
        closed.push(`${backend} ${endpoint}`);
      },
    } as unknown as Runtime;
  };
}

function provider(
  backend: BackendName,
  envVar: string,
  defaults: Array<[string, "ok" | "fail" | "hang"]>,
  envBehaviour: "ok" | "fail" | "hang" = "ok",
): RuntimeProvider {
  return {
    backends: [backend],
    fromEnv: async (env) =>
      env[envVar]
        ? [
            {
              backend,
              endpoint: env[envVar] as string,
              source: envVar,
              open: fake(backend, env[envVar] as string, envBehaviour),
            },
          ]
        : [],
    defaults: () =>
      defaults.map(([endpoint, b]) => ({
        backend,
        endpoint,
        source: "default socket",
        open: fake(backend, endpoint, b),
      })),
  };
}

describe("connectRuntime", () => {
  it("uses what the environment configures before any default socket", async () => {
    const providers = [
      provider("docker", "DOCKER_HOST", [[`unix://${live}`, "ok"]]),
      provider("containerd", "CONTAINERD_ADDRESS", [[live, "ok"]]),
    ];
    const got = await connectRuntime({ providers, env: { CONTAINERD_ADDRESS: "tcp://10.0.0.1:1" } });
    expect(got.candidate).toEqual({
      backend: "containerd",
      endpoint: "tcp://10.0.0.1:1",
      source: "CONTAINERD_ADDRESS",
    });
    expect(got.info.backend).toBe("containerd");
  });

  it("does not fall back to a default socket when the configured daemon is down", async () => {
    const providers = [provider("docker", "DOCKER_HOST", [[`unix://${live}`, "ok"]], "fail")];
    const err = await connectRuntime({ providers, env: { DOCKER_HOST: "tcp://127.0.0.1:9" } }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(NoRuntimeError);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err.attempts.map((a: { source: string }) => a.source)).toEqual(["DOCKER_HOST"]);
    expect(closed).toContain("docker tcp://127.0.0.1:9");
  });

  it("honours BERTH_RUNTIME, and refuses a backend nobody provides", async () => {
    const providers = [
      provider("docker", "DOCKER_HOST", [[`unix://${live}`, "ok"]]),
      provider("cri", "CONTAINER_RUNTIME_ENDPOINT", [[`unix://${live}`, "ok"]]),
    ];
    const got = await connectRuntime({ providers, env: { BERTH_RUNTIME: "cri", DOCKER_HOST: "tcp://x:1" } });
    expect(got.candidate.backend).toBe("cri");
    await expect(connectRuntime({ providers, env: { BERTH_RUNTIME: "lxc" } })).rejects.toThrow(
      /unknown backend "lxc" \(from BERTH_RUNTIME\); known: docker, cri/,
    );
    await expect(connectRuntime({ providers, backend: "lxc", env: {} })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it("lists every socket tried, naming the path and what is wrong with it", async () => {
    const file = join(dir, "not-a-socket");
    writeFileSync(file, "");
    const providers = [
      provider("docker", "DOCKER_HOST", [
        [`unix://${join(dir, "missing.sock")}`, "ok"],
        [`unix://${file}`, "ok"],
      ]),
      provider("containerd", "CONTAINERD_ADDRESS", [[live, "fail"]]),
    ];
    const err = await connectRuntime({ providers, env: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(NoRuntimeError);
    expect(err.message).toContain(
      `docker at unix://${join(dir, "missing.sock")} (default socket): socket ${join(dir, "missing.sock")} does not exist`,
    );
    expect(err.message).toContain(`${file} is not a socket`);
    expect(err.message).toContain(`containerd at ${live} (default socket): connection refused`);
    expect(err.attempts).toHaveLength(3);
  });

  it("gives a daemon that does not answer a bounded time", async () => {
    const providers = [provider("docker", "DOCKER_HOST", [[`unix://${live}`, "hang"]])];
    const t0 = Date.now();
    const err = await connectRuntime({ providers, env: {}, probeTimeout: 200 }).catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(err.attempts[0].error).toBeInstanceOf(TimeoutError);
  });
});

describe("discoverRuntimes", () => {
  it("probes configured and default candidates, once each, and reports both kinds of outcome", async () => {
    opened.length = 0;
    const providers = [
      provider("docker", "DOCKER_HOST", [[`unix://${live}`, "ok"]]),
      provider("podman", "CONTAINER_HOST", [[`unix://${live}`, "ok"]]),
      provider("containerd", "CONTAINERD_ADDRESS", [[live, "fail"]]),
    ];
    const { runtimes, attempts } = await discoverRuntimes({
      providers,
      env: { DOCKER_HOST: `unix://${live}` },
    });
    expect(runtimes.map((r) => `${r.candidate.backend} ${r.candidate.source}`)).toEqual([
      "docker DOCKER_HOST",
      "podman default socket",
    ]);
    expect(attempts.map((a) => a.backend)).toEqual(["containerd"]);
    expect(opened.filter((o) => o.startsWith("docker"))).toHaveLength(1);
  });
});
