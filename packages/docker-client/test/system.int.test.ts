// Runs against both the Docker engine and Podman's Docker-compatible API from the harness.
import { NotFoundError } from "@berth/runtime-core";
import { afterAll, describe, expect, it } from "vitest";
import { daemonSet } from "../../../test/support/daemon-set.js";
import { DockerClient } from "../src/index.js";

const targets = [
  { name: "docker", host: process.env.DOCKER_HOST },
  { name: "podman", host: process.env.PODMAN_HOST },
];

describe.each(targets)("$name", ({ name, host }) => {
  const docker = new DockerClient({ host: host ?? "", backend: name });
  afterAll(() => docker.close());

  const api = name === "docker" ? daemonSet.dockerApi : daemonSet.podmanApi;

  it(`negotiates the daemon's API version (${api} here) from one ping`, async () => {
    expect(await docker.apiVersion()).toBe(api);
  });

  it("reads the engine version", async () => {
    const v = await docker.system.version();
    expect(v.ApiVersion).toBe(api);
    expect(v.Version).toMatch(name === "docker" ? daemonSet.docker : daemonSet.podman);
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
