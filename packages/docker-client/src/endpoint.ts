// Where the Docker daemon is: DOCKER_HOST forms turned into an undici origin and connect options.
import { readFile } from "node:fs/promises";
import { ValidationError } from "@berth/runtime-core";
import type { DockerTlsSettings } from "@berth/runtime-core/internal";

/** TLS material for a tcp:// or https:// daemon: PEM text or bytes, not paths (see loadTls). */
export interface TlsOptions {
  /** CA certificate(s) the daemon's certificate must chain to (default: Node's trusted CAs). */
  ca?: string | Buffer;
  /** Client certificate, for a daemon that asks for one. */
  cert?: string | Buffer;
  /** The client certificate's private key. */
  key?: string | Buffer;
  /** Verify the daemon's certificate (default true). */
  verify?: boolean;
  /** The name the daemon's certificate must carry (default: the host's). */
  servername?: string;
}

/** A parsed Docker host: where the HTTP requests go. */
export interface Endpoint {
  /** What the user named, for error messages: unix:///var/run/docker.sock, tcp://host:2376. */
  display: string;
  /** The HTTP origin requests are made to (`http://localhost` over a socket). */
  origin: string;
  /** The unix socket's path, for a unix:// host. */
  socketPath?: string;
  /** TLS options, for an https connection. */
  tls?: TlsOptions;
  /** ssh://user@host: requests go through `docker system dial-stdio` over SSH. */
  ssh?: boolean;
}

/** Parse a DOCKER_HOST value. tcp:// is plain HTTP unless TLS options are given (then https). */
export function parseDockerHost(host: string, tls?: TlsOptions): Endpoint {
  if (host.startsWith("unix://")) {
    const socketPath = host.slice("unix://".length);
    if (!socketPath) throw new ValidationError(`DOCKER_HOST ${host} names no socket path`);
    return { display: host, origin: "http://localhost", socketPath };
  }
  if (host.startsWith("ssh://")) return { display: host, origin: "http://localhost", ssh: true };
  if (host.startsWith("/"))
    return { display: `unix://${host}`, origin: "http://localhost", socketPath: host };
  const m = /^(tcp|http|https):\/\/([^/]+)\/?$/.exec(host);
  if (!m) {
    throw new ValidationError(
      `unsupported Docker host "${host}": expected unix:///path, tcp://host:port, http(s)://host:port, ssh://user@host`,
    );
  }
  const [, scheme, authority] = m as unknown as [string, string, string];
  const secure = scheme === "https" || (scheme === "tcp" && tls !== undefined);
  const port = authority.includes(":") ? "" : secure ? ":2376" : ":2375";
  return {
    display: host,
    origin: `${secure ? "https" : "http"}://${authority}${port}`,
    ...(secure && tls ? { tls } : {}),
  };
}

/** Read the TLS material runtime-core's endpoint discovery found (DOCKER_CERT_PATH, a context's tls dir). */
export async function loadTls(settings: DockerTlsSettings): Promise<TlsOptions> {
  const read = (path: string | undefined) => (path ? readFile(path) : Promise.resolve(undefined));
  const [ca, cert, key] = await Promise.all([
    read(settings.caPath),
    read(settings.certPath),
    read(settings.keyPath),
  ]);
  return {
    verify: settings.verify,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
}
