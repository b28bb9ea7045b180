// What the suites that drive every backend at once (test/load, test/fuzz) need beside the Runtime under
// test: a short-lived admin client per backend to count and sweep what a test made, the sweeps themselves,
// and the choice of backends from the harness's environment.
import { ContainerdClient, removeNamespace } from "../../packages/containerd-client/src/index.js";
import { CriClient } from "../../packages/crio-client/src/index.js";
import { DockerClient } from "../../packages/docker-client/src/index.js";

/** `fn` with a Docker (or Podman) client of its own, closed after. */
export async function withDocker<T>(
  host: string,
  backend: "docker" | "podman",
  fn: (d: DockerClient) => Promise<T>,
): Promise<T> {
  const d = new DockerClient({ host, backend });
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}

/** `fn` with a containerd client of its own in `namespace`, closed after. */
export async function withContainerd<T>(
  address: string,
  namespace: string,
  fn: (c: ContainerdClient) => Promise<T>,
): Promise<T> {
  const c = new ContainerdClient({ address, namespace });
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** `fn` with a CRI client of its own, closed after. */
export async function withCri<T>(endpoint: string, fn: (c: CriClient) => Promise<T>): Promise<T> {
  const c = new CriClient({ endpoint });
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** Remove the client's namespace and all in it; containerd may refuse for a moment after the last snapshots went. */
export async function removeNamespaceSoon(c: ContainerdClient, attempts = 5): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await removeNamespace(c);
      return;
    } catch (err) {
      if (attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Stop and remove these CRI containers, then these pods; what is already gone is no error. */
export async function sweepCri(
  c: CriClient,
  containers: readonly { id: string }[],
  pods: readonly { id: string }[],
): Promise<void> {
  for (const x of containers) {
    await c.stopContainer(x.id, 0).catch(() => {});
    await c.removeContainer(x.id).catch(() => {});
  }
  for (const p of pods) {
    await c.stopPodSandbox(p.id).catch(() => {});
    await c.removePodSandbox(p.id).catch(() => {});
  }
}

/** How a suite makes its view of each backend from the harness's address for it. */
export interface BackendFactories<B> {
  docker(name: "docker" | "podman", host: string): B;
  containerd(address: string): B;
  cri(endpoint: string): B;
}

/**
 * The backend `name` from the environment (DOCKER_HOST, PODMAN_HOST, CONTAINERD_ADDRESS,
 * CONTAINER_RUNTIME_ENDPOINT), undefined when the harness did not start it; an unknown name throws,
 * naming `variable` (the suite's list of backends).
 */
export function backendFromEnv<B>(
  name: string,
  make: BackendFactories<B>,
  variable: string,
  env: NodeJS.ProcessEnv = process.env,
): B | undefined {
  switch (name) {
    case "docker":
      return env.DOCKER_HOST ? make.docker("docker", env.DOCKER_HOST) : undefined;
    case "podman":
      return env.PODMAN_HOST ? make.docker("podman", env.PODMAN_HOST) : undefined;
    case "containerd":
      return env.CONTAINERD_ADDRESS ? make.containerd(env.CONTAINERD_ADDRESS) : undefined;
    case "cri":
      return env.CONTAINER_RUNTIME_ENDPOINT ? make.cri(env.CONTAINER_RUNTIME_ENDPOINT) : undefined;
    default:
      throw new Error(`${variable}: unknown backend ${name}`);
  }
}
