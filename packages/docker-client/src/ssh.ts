// ssh://user@host[:port]: one SSH connection per client, and for every HTTP connection undici wants, a
// new channel on it running `docker system dial-stdio` on the remote host (as the Docker CLI does). ssh2
// is loaded with the first connection (ssh2-module.ts).
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { UnauthorizedError, UnavailableError, ValidationError } from "@berth/runtime-core";
import type { Client, ConnectConfig } from "ssh2";
import { loadSsh2 } from "./ssh2-module.js";

/** Settings of ssh:// Docker hosts. Every field is optional. */
export interface SshOptions {
  /** Private key (PEM/OpenSSH); default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa, whichever exists. */
  privateKey?: string | Buffer;
  /** Passphrase of an encrypted `privateKey`. */
  passphrase?: string;
  /** SSH agent socket; default SSH_AUTH_SOCK. */
  agent?: string;
  /** known_hosts file checked for the server's key; default ~/.ssh/known_hosts. */
  knownHostsPath?: string;
  /** Accept any host key. Only for throwaway hosts: it makes the connection trivially interceptable. */
  insecureSkipHostKeyCheck?: boolean;
  /** Remote command that bridges stdio to the daemon; default `docker system dial-stdio`. */
  dialCommand?: string;
  /** ms to establish the SSH connection (default 10 s). */
  readyTimeout?: number;
}

/** The user, host and port of an ssh:// Docker host. */
export interface SshTarget {
  /** The user to log in as (default: $USER, else root). */
  username: string;
  /** The host name or address (an IPv6 address without its brackets). */
  host: string;
  /** The SSH port (default 22). */
  port: number;
}

/** Parses `ssh://[user@]host[:port]`; anything else is a ValidationError. */
export function parseSshHost(url: string): SshTarget {
  const m = /^ssh:\/\/(?:([^@/]+)@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(url);
  if (!m) throw new ValidationError(`invalid ssh Docker host "${url}": expected ssh://[user@]host[:port]`);
  return {
    username: m[1] ?? process.env.USER ?? "root",
    host: (m[2] as string).replace(/^\[|\]$/g, ""),
    port: m[3] ? Number(m[3]) : 22,
  };
}

/** What a known_hosts file says of a host's key. */
export type HostKeyVerdict =
  /** Listed for this host. */
  | "known"
  /** Marked `@revoked`: never accepted, whatever else lists it. */
  | "revoked"
  /** Not listed for this host, but a `@cert-authority` is: the host is meant to show a certificate,
   *  which berth does not verify. */
  | "certificate"
  /** Not listed for this host. */
  | "unknown";

/** Whether one host pattern (OpenSSH's `*` and `?` wildcards, case-insensitive) matches a name. */
function patternMatches(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern.toLowerCase() === name.toLowerCase();
  const source = pattern
    .replace(/\*+/g, "*")
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${source}$`, "i").test(name);
}

/** Whether a known_hosts host field names one of `names`: plain patterns, negated ones (`!pattern`,
 *  which rule the line out), or one hashed entry (`|1|salt|hash`). */
function hostsMatch(field: string, names: string[]): boolean {
  if (field.startsWith("|1|")) {
    const [, , salt, hash] = field.split("|");
    return names.some(
      (name) =>
        createHmac("sha1", Buffer.from(salt ?? "", "base64"))
          .update(name)
          .digest("base64") === hash,
    );
  }
  let matched = false;
  for (const pattern of field.split(",")) {
    const negated = pattern.startsWith("!");
    const hit = names.some((name) => patternMatches(negated ? pattern.slice(1) : pattern, name));
    if (hit && negated) return false;
    if (hit) matched = true;
  }
  return matched;
}

/**
 * What a known_hosts file says of this key for host:port, as OpenSSH reads it: plain, wildcard, negated
 * and hashed host entries; a `@revoked` key is refused for every host (the marker says it must never be
 * accepted); `@cert-authority` lines are noted, since berth does not verify host certificates; lines
 * with another marker are skipped.
 */
export function knownHostsVerdict(text: string, target: SshTarget, key: Buffer): HostKeyVerdict {
  const names = target.port === 22 ? [target.host] : [`[${target.host}]:${target.port}`];
  const keyB64 = key.toString("base64");
  let known = false;
  let authority = false;
  for (const line of text.split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (parts[0]?.startsWith("#")) continue;
    const marker = parts[0]?.startsWith("@") ? parts.shift() : undefined;
    if (parts.length < 3) continue;
    const [hosts, , b64] = parts as [string, string, string];
    if (marker === "@revoked") {
      if (b64 === keyB64) return "revoked";
    } else if (marker === "@cert-authority") {
      authority ||= hostsMatch(hosts, names);
    } else if (marker === undefined && b64 === keyB64 && hostsMatch(hosts, names)) {
      known = true;
    }
  }
  return known ? "known" : authority ? "certificate" : "unknown";
}

/** Whether a known_hosts file lists this key for host:port, and does not revoke it. */
export function knownHostsAccepts(text: string, target: SshTarget, key: Buffer): boolean {
  return knownHostsVerdict(text, target, key) === "known";
}

function defaultKey(): Buffer | undefined {
  for (const name of ["id_ed25519", "id_ecdsa", "id_rsa"]) {
    try {
      return readFileSync(join(homedir(), ".ssh", name));
    } catch {
      // try the next
    }
  }
  return undefined;
}

const HOST_KEY_REFUSALS = {
  unknown: "the host key is not in known_hosts",
  revoked: "the host key is marked @revoked in known_hosts",
  certificate:
    "known_hosts trusts a certificate authority (@cert-authority) for this host, and berth does not verify SSH host certificates: list the host's own key in known_hosts",
} as const;

/**
 * One SSH connection to a Docker host, over which each HTTP connection is a channel running `docker system
 * dial-stdio`. The host key is checked against known_hosts (an unknown or changed key is refused with an
 * UnauthorizedError); ssh2 is loaded on the first dial (UnsupportedError when it is not installed).
 */
export class SshDialer {
  /** The parsed host. */
  readonly target: SshTarget;
  /** How many SSH connections this dialer has opened (one, unless the connection dropped). */
  connections = 0;
  #client: Promise<Client> | undefined;
  readonly #options: SshOptions;
  readonly #display: string;

  constructor(url: string, options: SshOptions = {}) {
    this.target = parseSshHost(url);
    this.#options = options;
    this.#display = url;
  }

  #connect(): Promise<Client> {
    if (this.#client) return this.#client;
    const o = this.#options;
    const target = this.target;
    let hostKey: HostKeyVerdict = "known";
    const promise = loadSsh2().then(
      (ssh2) =>
        new Promise<Client>((resolve, reject) => {
          const client = new ssh2.Client() as Client;
          const config: ConnectConfig = {
            host: target.host,
            port: target.port,
            username: target.username,
            readyTimeout: o.readyTimeout ?? 10_000,
            keepaliveInterval: 15_000,
            hostVerifier: (key: Buffer) => {
              if (o.insecureSkipHostKeyCheck) return true;
              let text = "";
              try {
                text = readFileSync(o.knownHostsPath ?? join(homedir(), ".ssh", "known_hosts"), "utf8");
              } catch {
                // no known_hosts: nothing is trusted
              }
              hostKey = knownHostsVerdict(text, target, key);
              return hostKey === "known";
            },
          };
          const key = o.privateKey ?? defaultKey();
          if (key) config.privateKey = key;
          if (o.passphrase) config.passphrase = o.passphrase;
          const agent = o.agent ?? process.env.SSH_AUTH_SOCK;
          if (agent) config.agent = agent;
          client.once("ready", () => {
            this.connections++;
            resolve(client);
          });
          const file = o.knownHostsPath ?? "~/.ssh/known_hosts";
          client.once("error", (err: Error & { level?: string }) => {
            const details = { operation: "ssh.connect", backend: "docker", cause: err };
            if (hostKey !== "known") {
              reject(
                new UnauthorizedError(
                  `ssh ${this.#display}: ${HOST_KEY_REFUSALS[hostKey]} (${file})`,
                  details,
                ),
              );
            } else if (err.level === "client-authentication") {
              reject(new UnauthorizedError(`ssh ${this.#display}: authentication failed`, details));
            } else reject(new UnavailableError(`ssh ${this.#display}: ${err.message}`, details));
          });
          client.on("close", () => {
            if (this.#client === promise) this.#client = undefined;
          });
          client.connect(config);
        }),
    );
    this.#client = promise;
    promise.catch(() => {
      if (this.#client === promise) this.#client = undefined;
    });
    return promise;
  }

  /** A new stream to the daemon over the shared SSH connection. */
  async dial(): Promise<Duplex> {
    const client = await this.#connect();
    return new Promise((resolve, reject) => {
      client.exec(this.#options.dialCommand ?? "docker system dial-stdio", (err, channel) => {
        if (err)
          reject(
            new UnavailableError(`ssh ${this.#display}: ${err.message}`, {
              operation: "ssh.dial",
              cause: err,
            }),
          );
        else resolve(channel as unknown as Duplex);
      });
    });
  }

  /** Ends the SSH connection (and every channel on it). */
  async close(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    if (c) (await c.catch(() => undefined))?.end();
  }
}
