// runtime-core's conformance suite on Docker and on Podman's Docker-compatible API, with a hostile registry
// of the test's own: a proxy in front of the harness's registry (Podman: on $BERTH_HOSTILE_REGISTRY, the
// only other port its registries.conf lets it speak plain HTTP to; without it, a layer tampered with where
// the registry stores it).
import { type HostileRegistry, runtimeConformance } from "@berth/runtime-core/conformance";
import { afterAll, beforeAll, describe, it } from "vitest";
import { atRestHostileRegistry, TamperingRegistry } from "../../../test/support/tampering-registry.js";
import { DockerClient, DockerRuntime } from "../src/index.js";

const env = process.env;
const image = env.BERTH_TEST_IMAGE ?? "";
const dockerRegistry = await TamperingRegistry.start(env.BERTH_REGISTRY ?? "");
const podmanProxy = env.BERTH_HOSTILE_REGISTRY
  ? await TamperingRegistry.start(env.BERTH_REGISTRY ?? "", Number(env.BERTH_HOSTILE_REGISTRY.split(":")[1]))
  : undefined;
const podmanAtRest = podmanProxy ? undefined : atRestHostileRegistry();

const backends: Array<[name: string, host: string, hostile: HostileRegistry, made: () => string[]]> = [
  [
    "docker",
    env.DOCKER_HOST ?? "",
    dockerRegistry.forConformance(),
    () => dockerRegistry.made.map((m) => m.image),
  ],
  [
    "podman",
    env.PODMAN_HOST ?? "",
    podmanProxy?.forConformance() ?? (podmanAtRest as HostileRegistry),
    () => podmanProxy?.made.map((m) => m.image) ?? podmanAtRest?.made ?? [],
  ],
];

for (const [name, host, hostileRegistry, made] of backends) {
  runtimeConformance({
    name,
    image,
    connect: async () => new DockerRuntime(new DockerClient({ host, backend: name })),
    hostileRegistry,
    test: { describe, it, beforeAll, afterAll },
  });
  afterAll(async () => {
    const docker = new DockerClient({ host, backend: name });
    for (const m of made()) await docker.images.remove({ name: m, force: true }).catch(() => {});
    await docker.close();
  });
}

afterAll(async () => {
  await dockerRegistry.close();
  await podmanProxy?.close();
});
