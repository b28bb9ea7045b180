// runtime-core's conformance suite on Docker and on Podman's Docker-compatible API.
import { runtimeConformance } from "@berth/runtime-core/conformance";
import { afterAll, beforeAll, describe, it } from "vitest";
import { DockerClient, DockerRuntime } from "../src/index.js";

const image = process.env.BERTH_TEST_IMAGE ?? "";
for (const [name, host] of [
  ["docker", process.env.DOCKER_HOST],
  ["podman", process.env.PODMAN_HOST],
] as const) {
  runtimeConformance({
    name,
    image,
    connect: async () => new DockerRuntime(new DockerClient({ host: host ?? "", backend: name })),
    test: { describe, it, beforeAll, afterAll },
  });
}
