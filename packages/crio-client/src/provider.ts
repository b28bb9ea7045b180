// How connect() finds a CRI runtime: CONTAINER_RUNTIME_ENDPOINT (with IMAGE_SERVICE_ENDPOINT), else
// crictl.yaml's runtime-endpoint, else crictl's default sockets. BERTH_CRI_LOG_DIR names the directory
// pods get their log directories under (default DEFAULT_CRI_LOG_ROOT).
// Also the package's `./provider` entry: it loads the gRPC client only when a candidate is opened.
import type { RuntimeCandidate, RuntimeProvider } from "@berth/runtime-core";
import type { EnvMap } from "@berth/runtime-core/internal";
import { DEFAULT_CRI_ENDPOINTS, type EndpointCandidate, endpointCandidates } from "./endpoint.js";

/** How long the events probe waits for an UNIMPLEMENTED answer before taking the open stream as a yes. */
const EVENTS_PROBE_MS = 300;

const SOURCES = {
  option: "option",
  env: "CONTAINER_RUNTIME_ENDPOINT",
  "crictl.yaml": "crictl.yaml",
} as const;

function candidate(c: EndpointCandidate, source: string, env: EnvMap, timeout?: number): RuntimeCandidate {
  return {
    backend: "cri",
    endpoint: c.endpoint,
    source,
    // connect() checks the runtime with info(); here only whether it has container events, which is a
    // property of the daemon (containerd 1.7+, recent CRI-O), not of the backend. A runtime without them
    // answers UNIMPLEMENTED at once, so a short probe is enough; one that does not answer is left to info().
    open: async () => {
      const [{ CriClient }, { CriRuntime, probeContainerEvents }] = await Promise.all([
        import("./client.js"),
        import("./runtime.js"),
      ]);
      const cri = new CriClient({
        endpoint: c.endpoint,
        ...(c.imageEndpoint ? { imageEndpoint: c.imageEndpoint } : {}),
        ...(timeout ? { defaultTimeout: timeout * 1000 } : {}),
      });
      const containerEvents = await probeContainerEvents(cri, { timeout: EVENTS_PROBE_MS }).catch(
        () => false,
      );
      return new CriRuntime(cri, {
        ...(env.BERTH_CRI_LOG_DIR ? { logRoot: env.BERTH_CRI_LOG_DIR } : {}),
        containerEvents,
      });
    },
  };
}

/**
 * The CRI's candidates for connect(): CONTAINER_RUNTIME_ENDPOINT (with IMAGE_SERVICE_ENDPOINT), else
 * crictl.yaml's runtime-endpoint, else crictl's default sockets. The client is loaded only when a
 * candidate is opened.
 */
export const criProvider: RuntimeProvider = {
  backends: ["cri"],

  async fromEnv(env) {
    const { candidates, config } = endpointCandidates({ env: env as NodeJS.ProcessEnv });
    return candidates
      .filter((c) => c.source !== "default")
      .map((c) => candidate(c, SOURCES[c.source as keyof typeof SOURCES], env, config.timeout));
  },

  defaults(env) {
    const image = env.IMAGE_SERVICE_ENDPOINT;
    return DEFAULT_CRI_ENDPOINTS.map((endpoint) =>
      candidate(
        { endpoint, ...(image ? { imageEndpoint: image } : {}), source: "default" },
        "default socket",
        env,
      ),
    );
  },
};
