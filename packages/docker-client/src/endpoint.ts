// Where the Docker daemon is: DOCKER_HOST forms turned into an undici origin and connect options.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ValidationError } from "@berth/runtime-core";

export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";

export interface TlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Verify the daemon's certificate (default true). */
  verify?: boolean;
  servername?: string;
}

export interface Endpoint {
  /** What the user named, for error messages: unix:///var/run/docker.sock, tcp://host:2376. */
  display: string;
  origin: string;
  socketPath?: string;
  tls?: TlsOptions;
}

/** Parse a DOCKER_HOST value. tcp:// is plain HTTP unless TLS options are given (then https). */
export function parseDockerHost(host: string, tls?: TlsOptions): Endpoint {
  if (host.startsWith("unix://")) {
    const socketPath = host.slice("unix://".length);
    if (!socketPath) throw new ValidationError(`DOCKER_HOST ${host} names no socket path`);
    return { display: host, origin: "http://localhost", socketPath };
  }
  if (host.startsWith("/"))
    return { display: `unix://${host}`, origin: "http://localhost", socketPath: host };
  const m = /^(tcp|http|https):\/\/([^/]+)\/?$/.exec(host);
  if (!m) {
    throw new ValidationError(
      `unsupported Docker host "${host}": expected unix:///path, tcp://host:port, http(s)://host:port`,
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

/** TLS settings from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), as the CLI reads them. */
export function tlsFromEnv(env: NodeJS.ProcessEnv): TlsOptions | undefined {
  const certPath = env.DOCKER_CERT_PATH;
  const verify =
    env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== "" && env.DOCKER_TLS_VERIFY !== "0";
  if (!certPath && !verify) return undefined;
  const dir = certPath || join(env.HOME ?? "", ".docker");
  const read = (name: string) => {
    try {
      return readFileSync(join(dir, name));
    } catch {
      return undefined;
    }
  };
  const tls: TlsOptions = { verify };
  const ca = read("ca.pem");
  const cert = read("cert.pem");
  const key = read("key.pem");
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  return tls;
}
