// Print the versions of every runtime berth can reach: the Docker engine and its API version, Podman (when
// PODMAN_HOST or CONTAINER_HOST names it), containerd, and the CRI runtime (name, version, API version).
// Uses DOCKER_HOST, CONTAINERD_ADDRESS and CONTAINER_RUNTIME_ENDPOINT (the harness's .runtimes/env sets
// them; `npm run demo` starts it).
import { ContainerdClient } from "@berth/containerd-client";
import { CriClient } from "@berth/crio-client";
import { DockerClient } from "@berth/docker-client";

const docker = await DockerClient.fromEnv();
const containerd = ContainerdClient.fromEnv();
const cri = CriClient.fromEnv();
const podmanHost = process.env.PODMAN_HOST ?? process.env.CONTAINER_HOST;
const podman = podmanHost ? new DockerClient({ host: podmanHost, backend: "podman" }) : undefined;

try {
  const [engine, libpod, ctd, runtime] = await Promise.all([
    docker.system.version({}, { timeout: 15_000 }),
    podman?.system.version({}, { timeout: 15_000 }),
    containerd.version.version({}, { timeout: 15_000 }),
    cri.runtime.version({ version: "v1" }, { timeout: 15_000 }),
  ]);
  const rows: Array<[string, string]> = [
    [
      "Docker engine",
      `${engine.Version ?? "?"} (API ${engine.ApiVersion ?? "?"}, ${docker.endpoint.display})`,
    ],
    ...(libpod && podman
      ? ([
          [
            "Podman",
            `${libpod.Version ?? "?"} (Docker API ${libpod.ApiVersion ?? "?"}, ${podman.endpoint.display})`,
          ],
        ] as Array<[string, string]>)
      : []),
    ["containerd", `${ctd.version} (revision ${ctd.revision}, ${containerd.address})`],
    [
      "CRI runtime",
      `${runtime.runtimeName} ${runtime.runtimeVersion} (CRI API ${runtime.runtimeApiVersion}, ${cri.endpoint})`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
} finally {
  await docker.close();
  await podman?.close();
  containerd.close();
  cri.close();
}
