// Print the versions of every runtime berth can reach: the Docker engine and its API version, containerd,
// and the CRI runtime (name, version, API version). Uses DOCKER_HOST, CONTAINERD_ADDRESS and
// CONTAINER_RUNTIME_ENDPOINT (the harness's .runtimes/env sets them; `npm run demo` starts it).
import { ContainerdClient } from "@berth/containerd-client";
import { CriClient } from "@berth/crio-client";
import { DockerClient } from "@berth/docker-client";

const docker = await DockerClient.fromEnv();
const containerd = ContainerdClient.fromEnv();
const cri = CriClient.fromEnv();

try {
  const [engine, ctd, runtime] = await Promise.all([
    docker.system.version({}, { timeout: 5_000 }),
    containerd.version.version({}, { timeout: 5_000 }),
    cri.runtime.version({ version: "v1" }, { timeout: 5_000 }),
  ]);
  const rows: Array<[string, string]> = [
    [
      "Docker engine",
      `${engine.Version ?? "?"} (API ${engine.ApiVersion ?? "?"}, ${docker.endpoint.display})`,
    ],
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
  containerd.close();
  cri.close();
}
