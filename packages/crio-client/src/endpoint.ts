// Where a CRI runtime listens: the places crictl and the kubelet look, in crictl's order of precedence.
import { readFileSync } from "node:fs";
import { ValidationError } from "@berth/runtime-core";

/** Where crictl and the kubelet look, in order: CRI-O first, then containerd, then cri-dockerd. */
export const DEFAULT_CRI_ENDPOINTS = [
  "unix:///var/run/crio/crio.sock",
  "unix:///run/containerd/containerd.sock",
  "unix:///var/run/cri-dockerd.sock",
] as const;

/** Where crictl reads its config when CRI_CONFIG_FILE is unset. */
export const DEFAULT_CRICTL_CONFIG = "/etc/crictl.yaml";

/** The parts of crictl.yaml this client uses. */
export interface CrictlConfig {
  /** `runtime-endpoint`: the RuntimeService's socket. */
  runtimeEndpoint?: string;
  /** `image-endpoint`: the ImageService's, when apart. */
  imageEndpoint?: string;
  /** Seconds; crictl applies it to connecting and to each call. */
  timeout?: number;
}

/** Where the endpoints came from, so errors can say why a socket was tried. */
export type EndpointSource = "option" | "env" | "crictl.yaml" | "default";

/** One endpoint to try, and where it came from. */
export interface EndpointCandidate {
  /** The RuntimeService endpoint. */
  endpoint: string;
  /** The ImageService endpoint, when configured apart. */
  imageEndpoint?: string;
  /** Where it came from. */
  source: EndpointSource;
}

/**
 * Read crictl.yaml. It is a flat map of scalars (`runtime-endpoint: unix:///run/...`), so a line parser is
 * enough: nested YAML is not part of crictl's format. Unknown keys are ignored.
 */
export function parseCrictlConfig(text: string, where = "crictl.yaml"): CrictlConfig {
  const out: CrictlConfig = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, "").trimEnd();
    if (!line.trim()) continue;
    const m = /^([A-Za-z][\w-]*)\s*:\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = (m[2] ?? "").trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) {
      value = value.slice(1, -1);
    }
    switch (m[1]) {
      case "runtime-endpoint":
        if (value) out.runtimeEndpoint = value;
        break;
      case "image-endpoint":
        if (value) out.imageEndpoint = value;
        break;
      case "timeout": {
        if (!value) break;
        const n = Number(value);
        if (!Number.isFinite(n) || n < 0) {
          throw new ValidationError(`${where}: timeout ${JSON.stringify(value)} is not a number of seconds`, {
            operation: "crictl.config",
          });
        }
        out.timeout = n;
        break;
      }
    }
  }
  return out;
}

/** crictl.yaml at CRI_CONFIG_FILE or /etc/crictl.yaml; an absent file is an empty config. */
export function loadCrictlConfig(path?: string, env: NodeJS.ProcessEnv = process.env): CrictlConfig {
  const file = path ?? env.CRI_CONFIG_FILE ?? DEFAULT_CRICTL_CONFIG;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === "ENOENT" ||
      (err as NodeJS.ErrnoException).code === "EACCES"
    ) {
      return {};
    }
    throw err;
  }
  return parseCrictlConfig(text, file);
}

/** Options of endpoint resolution; each one overrides what the environment and crictl.yaml say. */
export interface ResolveEndpointOptions {
  /** The RuntimeService endpoint to use (then the only candidate). */
  endpoint?: string;
  /** The ImageService endpoint to use. */
  imageEndpoint?: string;
  /** The environment to read CONTAINER_RUNTIME_ENDPOINT, IMAGE_SERVICE_ENDPOINT and CRI_CONFIG_FILE from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Path of crictl.yaml; default CRI_CONFIG_FILE, else /etc/crictl.yaml. */
  crictlConfig?: string;
}

/**
 * The endpoints to try, in crictl's precedence: an explicit option, else CONTAINER_RUNTIME_ENDPOINT
 * (with IMAGE_SERVICE_ENDPOINT), else crictl.yaml's runtime-endpoint. Like crictl, a configured endpoint
 * is the only one tried; the default sockets are tried only when nothing is configured.
 */
export function endpointCandidates(options: ResolveEndpointOptions = {}): {
  /** The endpoints to try, in order. */
  candidates: EndpointCandidate[];
  /** crictl.yaml as read (empty when there is none). */
  config: CrictlConfig;
} {
  const env = options.env ?? process.env;
  const config = loadCrictlConfig(options.crictlConfig, env);
  const image = (fallback?: string) => {
    const v = options.imageEndpoint || env.IMAGE_SERVICE_ENDPOINT || config.imageEndpoint || fallback;
    return v ? { imageEndpoint: v } : {};
  };
  if (options.endpoint) {
    return { candidates: [{ endpoint: options.endpoint, ...image(), source: "option" }], config };
  }
  if (env.CONTAINER_RUNTIME_ENDPOINT) {
    return { candidates: [{ endpoint: env.CONTAINER_RUNTIME_ENDPOINT, ...image(), source: "env" }], config };
  }
  if (config.runtimeEndpoint) {
    return { candidates: [{ endpoint: config.runtimeEndpoint, ...image(), source: "crictl.yaml" }], config };
  }
  return {
    candidates: DEFAULT_CRI_ENDPOINTS.map((endpoint) => ({
      endpoint,
      ...image(),
      source: "default" as const,
    })),
    config,
  };
}

/** The socket path of a unix endpoint, or undefined for TCP. */
export function unixSocketPath(endpoint: string): string | undefined {
  if (endpoint.startsWith("unix://")) return endpoint.slice("unix://".length).replace(/^\/*/, "/");
  if (endpoint.startsWith("unix:")) return endpoint.slice("unix:".length);
  if (endpoint.startsWith("/")) return endpoint;
  return undefined;
}
