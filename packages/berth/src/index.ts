// berth-sdk: the Runtime interface with every backend behind it. `connect()` picks the one that answers;
// `discover()` finds them all. Only the providers are loaded here (where each backend is looked for); a
// backend's client is loaded when one of its candidates is tried, so an app pays for the backends it uses.
// The client packages stay usable on their own for each API in full.

import { containerdProvider } from "@berth/containerd-client/provider";
import { criProvider } from "@berth/crio-client/provider";
import { dockerProvider } from "@berth/docker-client/provider";
import {
  type ConnectedRuntime,
  type ConnectOptions,
  connectRuntime,
  discoverRuntimes,
  type Runtime,
  type RuntimeProvider,
} from "@berth/runtime-core";

export * from "@berth/runtime-core";

/** Docker and Podman, containerd, then CRI: the order backends are tried in when several are configured. */
export const providers: readonly RuntimeProvider[] = [dockerProvider, containerdProvider, criProvider];

/** Options of connect(), connectWithInfo() and discover(): those of connectRuntime(), `providers` defaulting to all three. */
export type BerthConnectOptions = Partial<ConnectOptions>;

/**
 * The first runtime that answers: BERTH_RUNTIME (docker, podman, containerd or cri) picks the backend;
 * otherwise DOCKER_HOST or a Docker context, CONTAINER_HOST / PODMAN_HOST, CONTAINERD_ADDRESS and
 * CONTAINER_RUNTIME_ENDPOINT (or /etc/crictl.yaml) are tried, and with none of them set, the default
 * sockets. Throws NoRuntimeError (an UnavailableError) listing every endpoint tried and why it failed.
 */
export async function connect(options: BerthConnectOptions = {}): Promise<Runtime> {
  return (await connectRuntime({ providers, ...options })).runtime;
}

/** Like connect(), with the endpoint and daemon info it settled on. */
export function connectWithInfo(options: BerthConnectOptions = {}): Promise<ConnectedRuntime> {
  return connectRuntime({ providers, ...options });
}

/** Every runtime that answers (configured or at a default socket), and what failed. Close each when done. */
export function discover(options: BerthConnectOptions = {}): ReturnType<typeof discoverRuntimes> {
  return discoverRuntimes({ providers, ...options });
}
