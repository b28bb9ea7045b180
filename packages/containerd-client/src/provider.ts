// How connect() finds containerd: CONTAINERD_ADDRESS (with CONTAINERD_NAMESPACE), else the default socket.
// BERTH_CONTAINERD_LOG_DIR moves the task logs the Runtime adapter writes; BERTH_RUNC_ROOT sets runc's
// state root for new containers (default: the shim's own).
// Also the package's `./provider` entry: it loads the gRPC client only when a candidate is opened.
import type { RuntimeCandidate, RuntimeProvider } from "@berth/runtime-core";
import type { EnvMap } from "@berth/runtime-core/internal";
import { DEFAULT_CONTAINERD_ADDRESS } from "./defaults.js";

function candidate(address: string, source: string, env: EnvMap): RuntimeCandidate {
  return {
    backend: "containerd",
    endpoint: address,
    source,
    open: async () =>
      (await import("./runtime.js")).ContainerdRuntime.fromEnv(
        { ...env, CONTAINERD_ADDRESS: address } as NodeJS.ProcessEnv,
        {
          ...(env.BERTH_CONTAINERD_LOG_DIR ? { logDir: env.BERTH_CONTAINERD_LOG_DIR } : {}),
          ...(env.BERTH_RUNC_ROOT ? { runtime: { root: env.BERTH_RUNC_ROOT } } : {}),
        },
      ),
  };
}

/**
 * containerd's candidates for connect(): CONTAINERD_ADDRESS (with CONTAINERD_NAMESPACE), else the default
 * socket. The gRPC client is loaded only when a candidate is opened.
 */
export const containerdProvider: RuntimeProvider = {
  backends: ["containerd"],
  async fromEnv(env) {
    return env.CONTAINERD_ADDRESS ? [candidate(env.CONTAINERD_ADDRESS, "CONTAINERD_ADDRESS", env)] : [];
  },
  defaults(env) {
    return [candidate(DEFAULT_CONTAINERD_ADDRESS, "default socket", env)];
  },
};
