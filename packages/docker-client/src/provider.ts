// How connect() finds Docker and Podman: DOCKER_HOST or the selected Docker context, CONTAINER_HOST
// (Podman's own variable) or PODMAN_HOST, then the usual sockets of each. Also the package's `./provider`
// entry: it loads the client only when a candidate is opened.
import { join } from "node:path";
import type { Runtime, RuntimeCandidate, RuntimeProvider } from "@berth/runtime-core";
import {
  DEFAULT_DOCKER_SOCKET,
  type EnvMap,
  homeDir,
  loadDockerConfig,
  resolveDockerEndpoint,
} from "@berth/runtime-core/internal";
import type { DockerClient } from "./client.js";

/** The client and adapter are loaded when a candidate is opened, not with the provider. */
async function openDocker(
  options: Parameters<typeof DockerClient.fromEnv>[0],
  backend: "docker" | "podman",
): Promise<Runtime> {
  const [{ DockerClient }, { DockerRuntime }] = await Promise.all([
    import("./client.js"),
    import("./runtime.js"),
  ]);
  return new DockerRuntime(await DockerClient.fromEnv(options), backend);
}

function candidate(
  backend: "docker" | "podman",
  endpoint: string,
  source: string,
  env: EnvMap,
): RuntimeCandidate {
  return {
    backend,
    endpoint,
    source,
    open: () => openDocker({ env, host: endpoint, backend }, backend),
  };
}

const unix = (path: string) => `unix://${path}`;

/**
 * Docker's and Podman's candidates for connect(): DOCKER_HOST or the selected Docker context, CONTAINER_HOST or
 * PODMAN_HOST, then their usual sockets. The client is loaded only when a candidate is opened.
 */
export const dockerProvider: RuntimeProvider = {
  backends: ["docker", "podman"],

  async fromEnv(env) {
    const out: RuntimeCandidate[] = [];
    const contextChosen =
      Boolean(env.DOCKER_CONTEXT) ||
      Boolean((await loadDockerConfig({ env }).catch(() => undefined))?.currentContext);
    if (env.DOCKER_HOST || contextChosen) {
      const found = await resolveDockerEndpoint({ env }).catch((err: unknown) => err as Error);
      if (found instanceof Error) {
        // A context that cannot be read is this candidate's failure, reported among connect()'s attempts;
        // the other configured backends are still tried.
        out.push({
          backend: "docker",
          endpoint: `docker context ${env.DOCKER_CONTEXT || "(current)"}`,
          source: "docker context",
          open: () => Promise.reject(found),
        });
      } else {
        const source =
          found.source === "DOCKER_HOST" ? "DOCKER_HOST" : `docker context ${found.context ?? "default"}`;
        out.push({
          backend: "docker",
          endpoint: found.host,
          source,
          // fromEnv again, so TLS settings of DOCKER_HOST or the context come along.
          open: () => openDocker({ env }, "docker"),
        });
      }
    }
    for (const name of ["CONTAINER_HOST", "PODMAN_HOST"] as const) {
      const host = env[name];
      if (host) out.push(candidate("podman", host, name, env));
    }
    return out;
  },

  defaults(env) {
    const xdg = env.XDG_RUNTIME_DIR;
    const home = homeDir(env);
    return [
      candidate("docker", unix(DEFAULT_DOCKER_SOCKET), "default socket", env),
      ...(xdg ? [candidate("docker", unix(join(xdg, "docker.sock")), "rootless default socket", env)] : []),
      candidate(
        "docker",
        unix(join(home, ".docker", "run", "docker.sock")),
        "rootless socket in ~/.docker",
        env,
      ),
      candidate(
        "docker",
        unix(join(home, ".docker", "desktop", "docker.sock")),
        "Docker Desktop socket",
        env,
      ),
      candidate("podman", unix("/run/podman/podman.sock"), "default socket", env),
      ...(xdg
        ? [candidate("podman", unix(join(xdg, "podman", "podman.sock")), "rootless default socket", env)]
        : []),
    ];
  },
};
