// The Docker CLI's config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json): registry auths,
// credential helpers and the current context. Credentials and endpoint discovery both read it from here.
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { ValidationError } from "./errors.js";

/** Environment variables as a plain map; `process.env` fits. */
export type EnvMap = Readonly<Record<string, string | undefined>>;

/** One entry of config.json's "auths" map, as the Docker CLI writes it. */
export interface DockerAuthEntry {
  /** base64 of "username:password". */
  auth?: string;
  /** The user name, when stored apart from `auth`. */
  username?: string;
  /** The password, when stored apart from `auth`. */
  password?: string;
  /** A refresh token the registry issued at login, used instead of a password. */
  identitytoken?: string;
  /** A bearer token for the registry, sent as is. */
  registrytoken?: string;
  /** Legacy; ignored. */
  email?: string;
  /** The registry's address as the CLI recorded it. */
  serveraddress?: string;
}

/** The parts of the Docker CLI's config.json berth reads; other keys are kept as they are. */
export interface DockerConfig {
  /** Stored credentials by registry (`https://index.docker.io/v1/`, `ghcr.io`). */
  auths?: Record<string, DockerAuthEntry>;
  /** Credential helper for every registry: "desktop" runs docker-credential-desktop. */
  credsStore?: string;
  /** Credential helper per registry host. */
  credHelpers?: Record<string, string>;
  /** The context `docker context use` selected. */
  currentContext?: string;
  [key: string]: unknown;
}

/** Where to find config.json. */
export interface DockerConfigOptions {
  /** Directory holding config.json; defaults to $DOCKER_CONFIG, then ~/.docker. */
  configDir?: string;
  /** Environment to read DOCKER_CONFIG and HOME from; defaults to process.env. */
  env?: EnvMap;
}

/** The home directory: $HOME from `env`, else the OS's idea of it. */
export function homeDir(env: EnvMap = process.env): string {
  return env.HOME || homedir();
}

/** The directory the Docker CLI would use for config.json, contexts and TLS material. */
export function dockerConfigDir(options: DockerConfigOptions = {}): string {
  const env = options.env ?? process.env;
  return options.configDir || env.DOCKER_CONFIG || join(homeDir(env), ".docker");
}

/** The path of the Docker CLI's config.json (which need not exist). */
export function dockerConfigPath(options: DockerConfigOptions = {}): string {
  return join(dockerConfigDir(options), "config.json");
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function invalid(path: string, what: string): ValidationError {
  return new ValidationError(`Docker config file ${path}: ${what}`, { operation: "loadDockerConfig" });
}

/** Where a JSON.parse failure happened, without echoing file content (it may hold secrets). */
function syntaxErrorLocation(text: string, err: unknown): string {
  const m = /position (\d+)/.exec(err instanceof Error ? err.message : "");
  if (!m) return "";
  const before = text.slice(0, Number(m[1]));
  const line = before.split("\n").length;
  const column = before.length - before.lastIndexOf("\n");
  return ` at line ${line}, column ${column}`;
}

/**
 * Read the Docker CLI config. A missing file is an empty config; a malformed one is a ValidationError
 * naming the file (never quoting its content, which may hold credentials).
 */
export async function loadDockerConfig(options: DockerConfigOptions = {}): Promise<DockerConfig> {
  const path = dockerConfigPath(options);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return {};
    throw invalid(path, `cannot be read (${code ?? "unknown error"})`);
  }
  // The Docker CLI accepts an empty file as an empty config.
  if (text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(path, `is not valid JSON${syntaxErrorLocation(text, err)}`);
  }
  if (!isObject(parsed)) throw invalid(path, "must hold a JSON object");
  const { auths, credsStore, credHelpers, currentContext } = parsed;
  if (auths !== undefined) {
    if (!isObject(auths)) throw invalid(path, '"auths" must be an object');
    for (const [key, entry] of Object.entries(auths)) {
      if (!isObject(entry)) throw invalid(path, `"auths" entry ${JSON.stringify(key)} must be an object`);
      for (const field of ["auth", "username", "password", "identitytoken", "registrytoken"]) {
        const v = entry[field];
        if (v !== undefined && v !== null && typeof v !== "string") {
          throw invalid(path, `"auths" entry ${JSON.stringify(key)} field "${field}" must be a string`);
        }
      }
    }
  }
  if (credsStore !== undefined && typeof credsStore !== "string") {
    throw invalid(path, '"credsStore" must be a string');
  }
  if (credHelpers !== undefined) {
    if (!isObject(credHelpers)) throw invalid(path, '"credHelpers" must be an object');
    for (const [key, helper] of Object.entries(credHelpers)) {
      if (typeof helper !== "string") {
        throw invalid(path, `"credHelpers" entry ${JSON.stringify(key)} must be a string`);
      }
    }
  }
  if (currentContext !== undefined && typeof currentContext !== "string") {
    throw invalid(path, '"currentContext" must be a string');
  }
  return parsed as DockerConfig;
}
