// How connect() finds Docker: a Docker context that cannot be read is one failed attempt among the others,
// never an error that stops connect() before the other configured backends are tried.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectRuntime, NoRuntimeError, ValidationError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { dockerProvider } from "../src/provider.js";

const home = mkdtempSync(join(tmpdir(), "berth-provider-home-"));

describe("dockerProvider", () => {
  it("turns a context that does not exist into a candidate that fails, and keeps Podman's", async () => {
    const env = {
      HOME: home,
      DOCKER_CONTEXT: "no-such-context",
      CONTAINER_HOST: "unix:///nonexistent/podman.sock",
    };
    const candidates = await dockerProvider.fromEnv(env);
    expect(candidates.map((c) => [c.backend, c.endpoint])).toEqual([
      ["docker", "docker context no-such-context"],
      ["podman", "unix:///nonexistent/podman.sock"],
    ]);
    await expect(candidates[0]?.open()).rejects.toBeInstanceOf(ValidationError);
  });

  it("lets connect() report the broken context among its attempts", async () => {
    const env = {
      HOME: home,
      DOCKER_CONTEXT: "no-such-context",
      CONTAINER_HOST: "unix:///nonexistent/podman.sock",
    };
    const err = await connectRuntime({ providers: [dockerProvider], env }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoRuntimeError);
    const attempts = (err as NoRuntimeError).attempts;
    expect(attempts.map((a) => a.backend)).toEqual(["docker", "podman"]);
    expect(attempts[0]?.error).toBeInstanceOf(ValidationError);
    expect(attempts[0]?.error.message).toContain("no-such-context");
  });

  it("looks at ~/.docker/run/docker.sock among the default sockets", () => {
    const endpoints = dockerProvider.defaults({ HOME: home }).map((c) => c.endpoint);
    expect(endpoints).toContain(`unix://${join(home, ".docker", "run", "docker.sock")}`);
  });
});
