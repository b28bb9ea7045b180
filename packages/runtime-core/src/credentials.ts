// Registry credentials found the way the Docker CLI finds them: a per-registry credential helper, then the
// global credential store, then the "auths" map of config.json. Helpers are separate programs
// (docker-credential-<name>) speaking a tiny stdin/stdout protocol; nothing here touches the network.
// No error message built here ever carries a secret. Credentials go only
// to the registry they name (credentialsForImage).
import { spawn } from "node:child_process";
import {
  type DockerAuthEntry,
  type DockerConfig,
  type DockerConfigOptions,
  dockerConfigPath,
  loadDockerConfig,
} from "./docker-config.js";
import { AbortedError, ProtocolError, TimeoutError, UnauthorizedError, ValidationError } from "./errors.js";
import { type ImageRef, parseImageRef } from "./image-ref.js";

/** The server address Docker Hub credentials are stored under, by `docker login` and every helper. */
export const DOCKER_HUB_AUTH_SERVER = "https://index.docker.io/v1/";
/** How long a credential helper (docker-credential-*) may run, in milliseconds, before a TimeoutError. */
export const DEFAULT_CREDENTIAL_HELPER_TIMEOUT_MS = 10_000;

const HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);
/** A helper's username meaning "the secret is an identity (refresh) token". */
const TOKEN_USERNAME = "<token>";
const MAX_HELPER_OUTPUT = 1024 * 1024;

/** Credentials for one registry: a username and password, or a token. */
export interface RegistryCredentials {
  /** The user name. */
  username?: string;
  /** The password (or a personal access token used as one). */
  password?: string;
  /** OAuth refresh token, exchanged for a bearer token with the registry's token service. */
  identityToken?: string;
  /** Bearer token to send to the registry as-is. */
  registryToken?: string;
  /** The address the credentials belong to; Docker Hub is "https://index.docker.io/v1/". */
  serverAddress: string;
}

/** Options of credential resolution from the Docker CLI's config and credential helpers. */
export interface ResolveCredentialsOptions extends DockerConfigOptions {
  /** An already loaded config; when given, config.json is not read. */
  config?: DockerConfig;
  /** How long a credential helper may run; default 10 s. */
  helperTimeoutMs?: number;
  /** Cancels a running credential helper: AbortedError once the signal fires. */
  signal?: AbortSignal;
}

/**
 * The registry an address names, compared the way Docker compares them: scheme, path and any user info
 * dropped, the host lowercased, Docker Hub's names ("docker.io", "index.docker.io", "registry-1.docker.io",
 * "https://index.docker.io/v1/") as "docker.io". A port stays: "127.0.0.1:5000" and "127.0.0.1:5001" are
 * two registries.
 */
export function registryOf(address: string): string {
  let host = address.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const slash = host.indexOf("/");
  if (slash >= 0) host = host.slice(0, slash);
  host = host.slice(host.lastIndexOf("@") + 1).toLowerCase();
  return HUB_ALIASES.has(host) ? "docker.io" : host;
}

/** The address credentials for this registry are stored under. */
function serverAddressFor(key: string): string {
  return key === "docker.io" ? DOCKER_HUB_AUTH_SERVER : key;
}

/**
 * The credentials to send for `image`: `auth` itself, its `serverAddress` filled in when it has none (then
 * they are taken to be for the image's own registry: Docker Hub's legacy URL, else the registry's host).
 * Credentials whose serverAddress names another registry are never sent anywhere: UnauthorizedError naming
 * both registries, thrown before any daemon or registry is asked. Every backend's pull goes through here.
 */
export function credentialsForImage<
  T extends {
    /** The address the credentials belong to, when the caller named one. */
    serverAddress?: string | undefined;
  },
>(
  image: ImageRef | string,
  auth: T,
  details: { operation: string; backend?: string },
): T & {
  /** The address the credentials belong to: the one given, else the image's registry. */
  serverAddress: string;
} {
  const ref = typeof image === "string" ? parseImageRef(image) : image;
  const where = { operation: details.operation, ...(details.backend ? { backend: details.backend } : {}) };
  if (typeof auth !== "object" || auth === null || Array.isArray(auth)) {
    throw new ValidationError(`${details.operation}: registry credentials must be an object`, where);
  }
  const given = (auth as { serverAddress?: unknown }).serverAddress;
  if (given !== undefined && given !== null && typeof given !== "string") {
    throw new ValidationError(`${details.operation}: the credentials' serverAddress must be a string`, where);
  }
  const imageRegistry = registryOf(ref.registry);
  if (!given?.trim()) return { ...auth, serverAddress: serverAddressFor(imageRegistry) };
  const named = registryOf(given);
  if (named !== imageRegistry) {
    throw new UnauthorizedError(
      `${details.operation}: the credentials given are for ${named}, and ${ref} is on ${imageRegistry}: ` +
        "they are not sent to another registry",
      where,
    );
  }
  return auth as T & { serverAddress: string };
}

/** Entries of a map whose keys name this registry, best first: exact spelling, Hub's legacy URL, the rest. */
function matchingEntries<T>(map: Record<string, T> | undefined, registry: string, key: string): T[] {
  if (!map) return [];
  const ranked: Array<[rank: number, value: T]> = [];
  for (const [k, v] of Object.entries(map)) {
    if (registryOf(k) !== key) continue;
    const rank = k === registry ? 0 : k === DOCKER_HUB_AUTH_SERVER ? 1 : 2;
    ranked.push([rank, v]);
  }
  return ranked.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

function fromAuthEntry(
  entry: DockerAuthEntry,
  serverAddress: string,
  where: string,
): RegistryCredentials | undefined {
  let { username, password } = entry;
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) {
      throw new ValidationError(`${where}: the "auth" field is not base64 of "username:password"`, {
        operation: "credentials.resolve",
      });
    }
    username = decoded.slice(0, colon);
    // The Docker CLI trims NULs some tools leave at the end of the password.
    password = decoded.slice(colon + 1).replace(/\0+$/, "");
  }
  const creds: RegistryCredentials = { serverAddress };
  if (username) creds.username = username;
  if (password) creds.password = password;
  if (entry.identitytoken) creds.identityToken = entry.identitytoken;
  if (entry.registrytoken) creds.registryToken = entry.registrytoken;
  const usable = creds.username || creds.password || creds.identityToken || creds.registryToken;
  return usable ? creds : undefined;
}

interface HelperRunOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  /** Where the helper was configured, for error messages. */
  configuredBy: string;
}

/**
 * Run `docker-credential-<helper> get` for one server address. Resolves undefined when the helper has no
 * credentials for it.
 */
async function runCredentialHelper(
  helper: string,
  serverAddress: string,
  opts: HelperRunOptions,
): Promise<RegistryCredentials | undefined> {
  const program = `docker-credential-${helper}`;
  const operation = "credentials.resolve";
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper)) {
    throw new ValidationError(
      `invalid credential helper name ${JSON.stringify(helper)} (${opts.configuredBy})`,
      {
        operation,
      },
    );
  }
  if (opts.signal?.aborted) {
    throw new AbortedError(`${program} was not started: aborted`, { operation, cause: opts.signal.reason });
  }

  const { stdout, stderr, exitCode } = await new Promise<{
    stdout: string;
    stderr: string;
    exitCode: number | null;
  }>((resolve, reject) => {
    const child = spawn(program, ["get"], { env: opts.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      fn();
    };
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_HELPER_OUTPUT) {
        child.kill("SIGKILL");
        finish(() => reject(new ProtocolError(`${program} wrote more than 1 MiB of output`, { operation })));
        return;
      }
      into.push(chunk);
    };
    const onAbort = (): void => {
      child.kill("SIGKILL");
      finish(() =>
        reject(new AbortedError(`${program} was aborted`, { operation, cause: opts.signal?.reason })),
      );
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(() =>
        reject(
          new TimeoutError(`credential helper ${program} did not answer within ${opts.timeoutMs} ms`, {
            operation,
          }),
        ),
      );
    }, opts.timeoutMs);
    opts.signal?.addEventListener("abort", onAbort, { once: true });

    child.stdout.on("data", collect(out));
    child.stderr.on("data", collect(err));
    child.on("error", (e: NodeJS.ErrnoException) => {
      const why =
        e.code === "ENOENT"
          ? `credential helper ${program} was not found on PATH`
          : e.code === "EACCES"
            ? `credential helper ${program} is not executable`
            : `credential helper ${program} could not be started (${e.code ?? e.message})`;
      finish(() => reject(new UnauthorizedError(`${why} (${opts.configuredBy})`, { operation, cause: e })));
    });
    child.on("close", (code) => {
      finish(() =>
        resolve({
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
          exitCode: code,
        }),
      );
    });
    // A helper that exits without reading stdin makes this write fail with EPIPE; its exit status tells more.
    child.stdin.on("error", () => {});
    child.stdin.end(serverAddress);
  });

  if (exitCode !== 0) {
    const said = `${stdout}\n${stderr}`.trim();
    if (/credentials not found/i.test(said)) return undefined;
    // Helpers print an error message when they fail: keep its first line, briefly. But a helper may have
    // printed its reply (the secret) before failing: output that looks like one is never quoted.
    const reply = /^[[{]/.test(said) || /"(?:Secret|Username)"\s*:/i.test(said);
    const firstLine = reply ? "" : (said.split("\n")[0]?.trim().slice(0, 200) ?? "");
    throw new UnauthorizedError(
      `credential helper ${program} failed for ${serverAddress} (exit code ${exitCode ?? "signal"})` +
        (firstLine
          ? `: ${firstLine}`
          : reply
            ? " (its output looked like credentials and is not shown)"
            : ""),
      { operation },
    );
  }

  let reply: unknown;
  try {
    reply = JSON.parse(stdout);
  } catch {
    throw new ProtocolError(`credential helper ${program} did not print a JSON object`, { operation });
  }
  if (typeof reply !== "object" || reply === null) {
    throw new ProtocolError(`credential helper ${program} did not print a JSON object`, { operation });
  }
  const { Username, Secret } = reply as { Username?: unknown; Secret?: unknown };
  const username = typeof Username === "string" ? Username : "";
  const secret = typeof Secret === "string" ? Secret : "";
  if (!username && !secret) return undefined;
  if (username === TOKEN_USERNAME) return { identityToken: secret, serverAddress };
  const creds: RegistryCredentials = { serverAddress };
  if (username) creds.username = username;
  if (secret) creds.password = secret;
  return creds;
}

/**
 * Find credentials for a registry ("docker.io", "ghcr.io", "127.0.0.1:5000", or a URL such as
 * "https://index.docker.io/v1/"). Tries, in order, `credHelpers[registry]`, `credsStore`, then the `auths`
 * entry; a helper with nothing stored for the registry passes to the next source. Resolves undefined when
 * no source has credentials.
 *
 * A configured helper that is missing, fails or is refused is an UnauthorizedError; one that hangs past
 * `helperTimeoutMs` is a TimeoutError.
 */
export async function resolveCredentials(
  registry: string,
  options: ResolveCredentialsOptions = {},
): Promise<RegistryCredentials | undefined> {
  if (typeof registry !== "string" || registry.trim() === "") {
    throw new ValidationError("resolveCredentials: the registry is empty", {
      operation: "credentials.resolve",
    });
  }
  const config = options.config ?? (await loadDockerConfig(options));
  const configPath = options.config ? "the given config" : dockerConfigPath(options);
  const key = registryOf(registry);
  const serverAddress = serverAddressFor(key);
  const run: Omit<HelperRunOptions, "configuredBy"> = {
    env: { ...(options.env ?? process.env) },
    timeoutMs: options.helperTimeoutMs ?? DEFAULT_CREDENTIAL_HELPER_TIMEOUT_MS,
    signal: options.signal,
  };

  const helper = matchingEntries(config.credHelpers, registry, key)[0];
  if (helper) {
    const creds = await runCredentialHelper(helper, serverAddress, {
      ...run,
      configuredBy: `credHelpers in ${configPath}`,
    });
    if (creds) return creds;
  }
  if (config.credsStore) {
    const creds = await runCredentialHelper(config.credsStore, serverAddress, {
      ...run,
      configuredBy: `credsStore in ${configPath}`,
    });
    if (creds) return creds;
  }
  for (const entry of matchingEntries(config.auths, registry, key)) {
    const creds = fromAuthEntry(entry, serverAddress, `Docker config ${configPath}, auths entry for ${key}`);
    if (creds) return creds;
  }
  return undefined;
}

/**
 * The X-Registry-Auth header value the Docker Engine API expects: base64url (padded, as the Docker CLI
 * sends it) of the JSON auth config.
 */
export function encodeDockerAuthHeader(creds: RegistryCredentials): string {
  const body = creds.identityToken
    ? { identitytoken: creds.identityToken }
    : creds.registryToken
      ? { registrytoken: creds.registryToken }
      : {
          username: creds.username ?? "",
          password: creds.password ?? "",
          serveraddress: creds.serverAddress,
        };
  return Buffer.from(JSON.stringify(body), "utf8").toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}
