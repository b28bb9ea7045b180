// ssh://user@host[:port]: one SSH connection per client, and for every HTTP connection undici wants, a
// new channel on it running `docker system dial-stdio` on the remote host (as the Docker CLI does).
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { UnauthorizedError, UnavailableError, ValidationError } from "@berth/runtime-core";
import { Client, type ConnectConfig } from "ssh2";

export interface SshOptions {
  /** Private key (PEM/OpenSSH); default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa, whichever exists. */
  privateKey?: string | Buffer;
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

export interface SshTarget {
  username: string;
  host: string;
  port: number;
}

export function parseSshHost(url: string): SshTarget {
  const m = /^ssh:\/\/(?:([^@/]+)@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(url);
  if (!m) throw new ValidationError(`invalid ssh Docker host "${url}": expected ssh://[user@]host[:port]`);
  return {
    username: m[1] ?? process.env.USER ?? "root",
    host: (m[2] as string).replace(/^\[|\]$/g, ""),
    port: m[3] ? Number(m[3]) : 22,
  };
}

/** Whether a known_hosts file lists this key for host:port (plain or hashed entries). */
export function knownHostsAccepts(text: string, target: SshTarget, key: Buffer): boolean {
  const names = target.port === 22 ? [target.host] : [`[${target.host}]:${target.port}`];
  const keyB64 = key.toString("base64");
  for (const line of text.split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 3 || parts[0]?.startsWith("#")) continue;
    const [hosts, , b64] = parts as [string, string, string];
    if (b64 !== keyB64) continue;
    for (const pattern of hosts.split(",")) {
      if (pattern.startsWith("|1|")) {
        const [, , salt, hash] = pattern.split("|");
        for (const name of names) {
          const h = createHmac("sha1", Buffer.from(salt ?? "", "base64"))
            .update(name)
            .digest("base64");
          if (h === hash) return true;
        }
      } else if (names.includes(pattern)) return true;
    }
  }
  return false;
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

export class SshDialer {
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
    let hostKeyRefused = false;
    const promise = new Promise<Client>((resolve, reject) => {
      const client = new Client();
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
          const ok = knownHostsAccepts(text, target, key);
          hostKeyRefused = !ok;
          return ok;
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
      client.once("error", (err: Error & { level?: string }) => {
        const details = { operation: "ssh.connect", backend: "docker", cause: err };
        if (hostKeyRefused) {
          reject(
            new UnauthorizedError(
              `ssh ${this.#display}: the host key is not in known_hosts (${o.knownHostsPath ?? "~/.ssh/known_hosts"})`,
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
    });
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

  async close(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    if (c) (await c.catch(() => undefined))?.end();
  }
}
