// Runs against both the Docker engine and Podman's Docker-compatible API from the harness.
import { NotFoundError } from "@berth/runtime-core";
import { afterAll, describe, expect, it } from "vitest";
import { DockerClient } from "../src/index.js";

const targets = [
  { name: "docker", host: process.env.DOCKER_HOST },
  { name: "podman", host: process.env.PODMAN_HOST },
];

describe.each(targets)("$name", ({ name, host }) => {
  const docker = new DockerClient({ host: host ?? "", backend: name });
  afterAll(() => docker.close());

  it("negotiates the daemon's API version (1.41 here) from one ping", async () => {
    expect(await docker.apiVersion()).toBe("1.41");
  });

  it("reads the engine version", async () => {
    const v = await docker.system.version();
    expect(v.ApiVersion).toBe("1.41");
    expect(v.Version).toMatch(name === "docker" ? /^20\.10\./ : /^4\./);
  });

  it("answers ping with OK", async () => {
    expect(await docker.system.ping()).toBe("OK");
  });

  it("gives NotFound for a container that does not exist", async () => {
    const err = await docker.containers.inspect({ id: "berth-no-such-container" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ operation: "containers.inspect", status: 404, backend: name });
  });
});
