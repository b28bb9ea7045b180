// Which Docker (or Podman) daemon to talk to, decided the way the Docker CLI decides: DOCKER_HOST, then the
// selected context (DOCKER_CONTEXT or config.json's currentContext), then the first socket that exists.
import { createHash } from "node:crypto";
import { access, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { dockerConfigDir, type EnvMap, homeDir, loadDockerConfig } from "./docker-config.js";
import { ValidationError } from "./errors.js";

/** Docker's system socket, the last resort when nothing is configured. */
export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";
/** The Docker CLI's built-in context (DOCKER_HOST or the default socket), which has no files of its own. */
export const DEFAULT_CONTEXT_NAME = "default";

/** TLS material for a tcp:// daemon, as DOCKER_CERT_PATH or a context's tls directory holds it. */
export interface DockerTlsSettings {
  /** Path of the CA certificate (ca.pem) the daemon's certificate is checked against. */
  caPath?: string;
  /** Path of the client certificate (cert.pem). */
  certPath?: string;
  /** Path of the client key (key.pem). */
  keyPath?: string;
  /** Verify the daemon's certificate (false for SkipTLSVerify / DOCKER_TLS without DOCKER_TLS_VERIFY). */
  verify: boolean;
}

/** Where the Docker CLI would connect, and why. */
export interface DockerEndpoint {
  /** "unix:///var/run/docker.sock", "tcp://host:2376", "ssh://user@host"... */
  host: string;
  /** What decided it: DOCKER_HOST, a Docker context (DOCKER_CONTEXT or config.json), or the default sockets. */
  source: "DOCKER_HOST" | "context" | "default";
  /** The context that was selected, when one was ("default" included). */
  context?: string;
  /** TLS settings, for a tcp:// host that uses TLS. */
  tls?: DockerTlsSettings;
  /** For source "default": every socket path that was checked, in order. */
  tried?: string[];
}

/** Options of Docker endpoint resolution. */
export interface DockerEndpointOptions {
  /** Environment to read DOCKER_HOST, DOCKER_CONTEXT, DOCKER_TLS_VERIFY and HOME from; defaults to process.env. */
  env?: EnvMap;
  /** Docker config directory (config.json, contexts/); defaults to $DOCKER_CONFIG, then ~/.docker. */
  configDir?: string;
  /** Whether a socket path exists; defaults to a filesystem check. Injectable for tests. */
  exists?: (path: string) => boolean | Promise<boolean>;
}

/** Default daemon sockets, most common first: Docker, rootless Docker, Docker Desktop, Podman. */
export function defaultSocketCandidates(env: EnvMap = process.env): string[] {
  const home = homeDir(env);
  const xdg = env.XDG_RUNTIME_DIR;
  const candidates = [
    DEFAULT_DOCKER_SOCKET,
    xdg ? join(xdg, "docker.sock") : undefined,
    join(home, ".docker", "run", "docker.sock"),
    join(home, ".docker", "desktop", "docker.sock"),
    "/run/podman/podman.sock",
    xdg ? join(xdg, "podman", "podman.sock") : undefined,
  ];
  return [...new Set(candidates.filter((c): c is string => c !== undefined))];
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Where the Docker CLI stores a context: directories named by the SHA-256 of the context name. */
export function dockerContextPaths(
  configDir: string,
  name: string,
): {
  /** The context's meta.json (its endpoints). */
  metaPath: string;
  /** The directory of its Docker endpoint's TLS files (ca.pem, cert.pem, key.pem). */
  tlsDir: string;
} {
  const id = createHash("sha256").update(name).digest("hex");
  return {
    metaPath: join(configDir, "contexts", "meta", id, "meta.json"),
    tlsDir: join(configDir, "contexts", "tls", id, "docker"),
  };
}

/** TLS material that exists in a directory, by the Docker CLI's file names (one listing, no probes). */
async function tlsFiles(dir: string): Promise<Omit<DockerTlsSettings, "verify">> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return {};
  }
  const out: Omit<DockerTlsSettings, "verify"> = {};
  if (names.includes("ca.pem")) out.caPath = join(dir, "ca.pem");
  if (names.includes("cert.pem")) out.certPath = join(dir, "cert.pem");
  if (names.includes("key.pem")) out.keyPath = join(dir, "key.pem");
  return out;
}

async function fromContext(name: string, configDir: string, selectedBy: string): Promise<DockerEndpoint> {
  const { metaPath, tlsDir } = dockerContextPaths(configDir, name);
  const fail = (what: string): never => {
    throw new ValidationError(`Docker context ${JSON.stringify(name)} (${selectedBy}) ${what}`, {
      operation: "resolveDockerEndpoint",
    });
  };
  let text: string;
  try {
    text = await readFile(metaPath, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return fail(`does not exist: no ${metaPath}`);
    return fail(`cannot be read: ${metaPath} (${code ?? "unknown error"})`);
  }
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch {
    return fail(`has a malformed ${metaPath} (not valid JSON)`);
  }
  const docker = (meta as { Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } } } | null)
    ?.Endpoints?.docker;
  if (typeof docker?.Host !== "string" || docker.Host === "") {
    return fail(`has no docker endpoint Host in ${metaPath}`);
  }
  const skipVerify = docker.SkipTLSVerify === true;
  const files = await tlsFiles(tlsDir);
  const endpoint: DockerEndpoint = { host: docker.Host, source: "context", context: name };
  // As in the Docker CLI: TLS only when the context stores TLS material or asks to skip verification.
  if (skipVerify || Object.keys(files).length > 0) endpoint.tls = { ...files, verify: !skipVerify };
  return endpoint;
}

async function fromDefaultSockets(
  env: EnvMap,
  exists: (path: string) => boolean | Promise<boolean>,
  context: string | undefined,
): Promise<DockerEndpoint> {
  const tried = defaultSocketCandidates(env);
  let found: string | undefined;
  for (const path of tried) {
    if (await exists(path)) {
      found = path;
      break;
    }
  }
  const endpoint: DockerEndpoint = {
    host: `unix://${found ?? DEFAULT_DOCKER_SOCKET}`,
    source: "default",
    tried,
  };
  if (context !== undefined) endpoint.context = context;
  return endpoint;
}

/**
 * Find the Docker daemon endpoint as the Docker CLI would. DOCKER_HOST wins (with DOCKER_TLS_VERIFY /
 * DOCKER_TLS / DOCKER_CERT_PATH); otherwise the context named by DOCKER_CONTEXT or config.json's
 * currentContext; otherwise (or for the "default" context) the first default socket that exists, falling
 * back to unix:///var/run/docker.sock. An unknown context is a ValidationError naming the path looked at.
 */
export async function resolveDockerEndpoint(options: DockerEndpointOptions = {}): Promise<DockerEndpoint> {
  const env = options.env ?? process.env;
  const configDir = dockerConfigDir({ configDir: options.configDir, env });
  const exists = options.exists ?? pathExists;

  if (env.DOCKER_HOST) {
    const endpoint: DockerEndpoint = { host: env.DOCKER_HOST, source: "DOCKER_HOST" };
    // The Docker CLI treats any non-empty value as "on", "0" included.
    const verify = Boolean(env.DOCKER_TLS_VERIFY);
    if (verify || env.DOCKER_TLS) {
      endpoint.tls = { ...(await tlsFiles(env.DOCKER_CERT_PATH || configDir)), verify };
    }
    return endpoint;
  }

  let context: string | undefined;
  let selectedBy = "";
  if (env.DOCKER_CONTEXT) {
    context = env.DOCKER_CONTEXT;
    selectedBy = "selected by DOCKER_CONTEXT";
  } else {
    const config = await loadDockerConfig({ configDir, env });
    if (config.currentContext) {
      context = config.currentContext;
      selectedBy = `currentContext in ${join(configDir, "config.json")}`;
    }
  }
  if (context !== undefined && context !== DEFAULT_CONTEXT_NAME) {
    return fromContext(context, configDir, selectedBy);
  }
  return fromDefaultSockets(env, exists, context);
}
