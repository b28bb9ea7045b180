// The Docker client: the generated operation table bound to a small undici core. Each call is
// checked against the negotiated API version, encoded as the table says, sent by the transport's one
// send() (which applies the deadline and the signal and refuses a status that does not answer the call),
// and its answer read by the row of `readers` for the response kind the table names (JSON, NDJSON,
// stdout/stderr frames, tar, or an upgraded connection).
import { Readable } from "node:stream";
import { ApiVersionError, ProtocolError, UnavailableError, ValidationError } from "@berth/runtime-core";
import { DEFAULT_DOCKER_SOCKET, type EnvMap, resolveDockerEndpoint } from "@berth/runtime-core/internal";
import { Pool } from "undici";
import { type Endpoint, loadTls, parseDockerHost, type TlsOptions } from "./endpoint.js";
import { errorFromTransport } from "./errors.js";
import { type DockerApi, operations } from "./generated/operations.js";
import type { OperationSpec, RequestOptions, ResponseKind } from "./operation.js";
import { checkRegistryAuth } from "./registry-auth.js";
import { SshDialer, type SshOptions } from "./ssh.js";
import {
  type BodyContext,
  frameStream,
  jsonStream,
  type StreamMode,
  tarStream,
  upgradedStream,
} from "./streams/body.js";
import {
  type BufferedResponse,
  MAX_ERROR_BYTES,
  type RawRequest,
  type Receive,
  type Received,
  send,
} from "./transport.js";

/** The newest Engine API version this client was generated from. */
export const MAX_API_VERSION = "1.51";
/** The oldest the client will negotiate down to. */
export const MIN_API_VERSION = "1.24";

/** How a DockerClient connects and what it bounds. Every field is optional. */
export interface DockerClientOptions {
  /** unix:///path, a socket path, tcp://host:port, http(s)://host:port (default /var/run/docker.sock). */
  host?: string;
  /** TLS material and verification for a tcp:// or https:// host. */
  tls?: TlsOptions;
  /** Pin the API version instead of negotiating it (DOCKER_API_VERSION). */
  apiVersion?: string;
  /**
   * Default deadline in ms (0 = none; default 60 s). A call that is not a stream must be answered in
   * full within it, from the moment it is sent (or its upload has ended); a stream must have its headers
   * within it, after which `idleTimeout` applies.
   */
  timeout?: number;
  /**
   * Default bound in ms on a stream's silence (logs, attach, exec output, events, progress, tar): past
   * it with no byte from the daemon while the stream is read, a TimeoutError ends the stream. Default
   * none: a quiet log follow or event stream is legitimate.
   */
  idleTimeout?: number;
  /** Most bytes of a JSON (or text) answer; past it, a ProtocolError and the connection dropped
   *  (default 16 MiB: a list of ten thousand containers, `system df` of a large host; kept under the
   *  32 MiB a hostile daemon may make the client hold, see SECURITY.md). */
  maxJsonBytes?: number;
  /** Most bytes of one line of an NDJSON stream (progress, events, stats); past it, a ProtocolError
   *  and the connection dropped (default 4 MiB: BuildKit's trace lines carry up to 2 MiB of step log). */
  maxJsonLineBytes?: number;
  /**
   * Most connections open to the daemon at once (default: no limit, as Docker's own Go client; 8 over
   * ssh://, under OpenSSH's MaxSessions). A stream (a log follow, attach, events) holds one for its whole
   * life, so with a limit, calls past it wait until a stream ends.
   */
  connections?: number;
  /** Idle keep-alive connections are closed after this many ms (default 10 s). */
  keepAliveTimeout?: number;
  /** Name used in errors: "docker" or "podman". */
  backend?: string;
  /** Settings for ssh:// hosts (keys, known_hosts). */
  ssh?: SshOptions;
}

type Params = Record<string, unknown> & { body?: unknown };

/** Compares two MAJOR.MINOR API versions: negative when `a` is older, 0 when equal, positive when newer. */
export function compareVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split(".").map(Number);
  const [bm = 0, bn = 0] = b.split(".").map(Number);
  return am === bm ? an - bn : am - bm;
}

const DEFAULT_TIMEOUT = 60_000;
const DEFAULT_MAX_JSON_BYTES = 16 * 2 ** 20;
const DEFAULT_MAX_JSON_LINE_BYTES = 4 * 2 ** 20;
/** Operations whose 304 is an answer (the container was already started, already stopped). */
const NOT_MODIFIED_ANSWERS = new Set(["ContainerStart", "ContainerStop"]);

/**
 * A path parameter as one path segment, percent-encoded whole: a `/`, `?` or `#` in it cannot start
 * another segment or a query. Docker's and Podman's routers decode the path before matching, so image and
 * plugin names with %2F-encoded slashes and colons work (checked against both). Because they then clean
 * the path, a `.` or `..` segment would still climb out of the endpoint: it is refused.
 */
function encodePathSegment(value: string, name: string, operation: string): string {
  if (value.split("/").some((segment) => segment === "." || segment === "..")) {
    throw new ValidationError(
      `${operation}: parameter "${name}" must not be or contain a "." or ".." segment`,
      {
        operation,
      },
    );
  }
  try {
    return encodeURIComponent(value);
  } catch (cause) {
    throw new ValidationError(`${operation}: parameter "${name}" is not well-formed Unicode`, {
      operation,
      cause,
    });
  }
}

const API_VERSION = /^\d{1,3}\.\d{1,3}$/;

/** URL-safe base64 with padding: what the Docker CLI sends and what Podman insists on. */
function base64url(text: string): string {
  return Buffer.from(text, "utf8").toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

/**
 * A typed client of the Docker Engine API (Docker and Podman's compatibility API): every operation of the
 * spec it was generated from, grouped as `containers`, `images`, `exec`, ... The API version is
 * negotiated on the first call (between MIN_API_VERSION and MAX_API_VERSION) unless pinned; an operation
 * newer than the daemon's version is an ApiVersionError. Daemon errors become berth errors (404
 * NotFoundError, 409 ConflictError, 401/403 UnauthorizedError, ...); an unreachable daemon is an
 * UnavailableError, a missed deadline a TimeoutError.
 */
export class DockerClient {
  /** Where the client connects, parsed from `host`. */
  readonly endpoint: Endpoint;
  /** The name used in errors: "docker" or "podman". */
  readonly backend: string;
  /** The undici connection pool to the daemon (closed by `close()`). */
  readonly pool: Pool;
  /** The client's bounds, its options' defaults applied once. */
  readonly #bounds: { timeout: number; idleTimeout: number; maxLineBytes: number };
  /** The cap of a JSON (or text) answer, and the option that sets it. */
  readonly #jsonCap: { maxBytes: number; name: string };
  /** The SSH connection behind an ssh:// host. */
  readonly ssh: SshDialer | undefined;
  #version: Promise<string> | undefined;

  /** The deadline in ms a call gets when it sets none (0 = none): the `timeout` option. */
  get timeout(): number {
    return this.#bounds.timeout;
  }

  /** Containers: create, start, inspect, logs, attach, archive, ... */
  declare readonly containers: DockerApi["containers"];
  /** Images: pull, build, inspect, push, tag, remove, save and load. */
  declare readonly images: DockerApi["images"];
  /** Exec instances: create, start, resize, inspect. */
  declare readonly exec: DockerApi["exec"];
  /** Networks: create, inspect, connect, disconnect, remove, prune. */
  declare readonly networks: DockerApi["networks"];
  /** Volumes: create, inspect, list, remove, prune. */
  declare readonly volumes: DockerApi["volumes"];
  /** System: ping, version, info, events, df, auth. */
  declare readonly system: DockerApi["system"];
  /** Swarm: init, join, leave, inspect, update, unlock. */
  declare readonly swarm: DockerApi["swarm"];
  /** Swarm nodes. */
  declare readonly nodes: DockerApi["nodes"];
  /** Swarm services. */
  declare readonly services: DockerApi["services"];
  /** Swarm tasks. */
  declare readonly tasks: DockerApi["tasks"];
  /** Swarm secrets. */
  declare readonly secrets: DockerApi["secrets"];
  /** Swarm configs. */
  declare readonly configs: DockerApi["configs"];
  /** Plugins: install, enable, disable, upgrade, remove. */
  declare readonly plugins: DockerApi["plugins"];
  /** Distribution: a registry's image manifest and platforms. */
  declare readonly distribution: DockerApi["distribution"];
  /** Session: the interactive session BuildKit uses. */
  declare readonly session: DockerApi["session"];

  constructor(options: DockerClientOptions = {}) {
    this.#bounds = {
      timeout: options.timeout ?? DEFAULT_TIMEOUT,
      idleTimeout: options.idleTimeout ?? 0,
      maxLineBytes: options.maxJsonLineBytes ?? DEFAULT_MAX_JSON_LINE_BYTES,
    };
    this.#jsonCap = { maxBytes: options.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES, name: "maxJsonBytes" };
    this.endpoint = parseDockerHost(options.host ?? `unix://${DEFAULT_DOCKER_SOCKET}`, options.tls);
    this.backend = options.backend ?? "docker";
    const tls = this.endpoint.tls;
    this.ssh = this.endpoint.ssh ? new SshDialer(this.endpoint.display, options.ssh) : undefined;
    const ssh = this.ssh;
    this.pool = new Pool(this.endpoint.origin, {
      // Over SSH every connection is a session channel; OpenSSH allows 10 per connection (MaxSessions).
      // Elsewhere no limit: with one, as many log follows as connections would starve every other call
      // (a stop() that would end them, too). Idle connections still close after keepAliveTimeout.
      connections: options.connections ?? (ssh ? 8 : null),
      keepAliveTimeout: options.keepAliveTimeout ?? 10_000,
      pipelining: 1,
      connect: ssh
        ? (_opts, callback) => {
            ssh.dial().then(
              (stream) => callback(null, stream as never),
              (err: Error) => callback(err, null),
            );
          }
        : {
            ...(this.endpoint.socketPath ? { socketPath: this.endpoint.socketPath } : {}),
            ...(tls
              ? {
                  ...(tls.ca ? { ca: tls.ca } : {}),
                  ...(tls.cert ? { cert: tls.cert } : {}),
                  ...(tls.key ? { key: tls.key } : {}),
                  ...(tls.servername ? { servername: tls.servername } : {}),
                  rejectUnauthorized: tls.verify !== false,
                }
              : {}),
          },
    });
    if (options.apiVersion) {
      if (!API_VERSION.test(options.apiVersion)) {
        throw new ValidationError(`API version "${options.apiVersion}" is not MAJOR.MINOR (as 1.41)`);
      }
      this.#version = Promise.resolve(options.apiVersion);
    }
    const groups: Record<string, Record<string, unknown>> = {};
    for (const spec of Object.values(operations) as OperationSpec[]) {
      groups[spec.group] ??= {};
      (groups[spec.group] as Record<string, unknown>)[spec.name] = (params?: Params, opts?: RequestOptions) =>
        this.call(spec, params ?? {}, opts);
    }
    for (const [name, group] of Object.entries(groups)) {
      Object.defineProperty(this, name, { value: group, enumerable: true });
    }
  }

  /**
   * A client for the daemon the Docker CLI would talk to: DOCKER_HOST (with DOCKER_TLS_VERIFY and
   * DOCKER_CERT_PATH), else DOCKER_CONTEXT or the config's current context, else the first default socket
   * that exists (Docker, rootless Docker, Docker Desktop, Podman). DOCKER_API_VERSION pins the version.
   */
  static async fromEnv(
    options: DockerClientOptions & { env?: EnvMap; configDir?: string } = {},
  ): Promise<DockerClient> {
    const { env = process.env, configDir, ...rest } = options;
    let host = rest.host;
    let tls = rest.tls;
    if (!host) {
      const found = await resolveDockerEndpoint({ env, ...(configDir ? { configDir } : {}) });
      host = found.host;
      if (!tls && found.tls) tls = await loadTls(found.tls);
    }
    const apiVersion = rest.apiVersion ?? env.DOCKER_API_VERSION;
    return new DockerClient({
      ...rest,
      host,
      ...(tls ? { tls } : {}),
      ...(apiVersion ? { apiVersion } : {}),
    });
  }

  /** The API version calls use: DOCKER_API_VERSION / the pinned one, else the lower of this client's and
   *  the daemon's, asked once with /_ping and cached. */
  apiVersion(options: RequestOptions = {}): Promise<string> {
    if (!this.#version) {
      const asked = this.#negotiate(options);
      this.#version = asked;
      // A failed ping is not cached: the next call asks again (the daemon may come back).
      asked.catch(() => {
        if (this.#version === asked) this.#version = undefined;
      });
    }
    return this.#version;
  }

  async #negotiate(options: RequestOptions): Promise<string> {
    const operation = "system.ping";
    try {
      // A call without a deadline of its own (wait) still gets one for its ping.
      const res = await this.#ping(options.timeout || this.#bounds.timeout, options.signal);
      const header = res.headers["api-version"];
      const daemon = Array.isArray(header) ? header[0] : header;
      if (!daemon) return MAX_API_VERSION;
      if (!API_VERSION.test(daemon)) {
        throw new ProtocolError(`${operation}: the daemon's API-Version header is not MAJOR.MINOR`, {
          operation,
          backend: this.backend,
        });
      }
      if (compareVersions(daemon, MIN_API_VERSION) < 0) {
        throw new ApiVersionError(
          `the daemon speaks Engine API ${daemon}, older than the oldest this client supports (${MIN_API_VERSION})`,
          MIN_API_VERSION,
          daemon,
          { operation, backend: this.backend },
        );
      }
      return compareVersions(daemon, MAX_API_VERSION) < 0 ? daemon : MAX_API_VERSION;
    } catch (err) {
      throw errorFromTransport(err, operation, this.endpoint.display, this.backend, options.signal);
    }
  }

  /** GET /_ping: its answer is "OK", so its body gets the small cap. */
  #ping(timeout: number, signal?: AbortSignal): Promise<BufferedResponse> {
    const req = { path: "/_ping", method: "GET", headers: {}, timeout, signal };
    return send(this.pool, req, {
      receive: "buffer",
      maxBytes: MAX_ERROR_BYTES,
      name: "the cap of a ping's answer",
    });
  }

  /** Call one operation of the table by its spec. The typed groups (`containers.inspect`...) call this. */
  async call(spec: OperationSpec, params: Params, options: RequestOptions = {}): Promise<unknown> {
    const operation = `${spec.group}.${spec.name}`;
    const reader = readers[spec.response];
    if (!reader) throw new ValidationError(`${operation}: unknown response kind ${spec.response}`);
    checkRegistryAuth(spec, params, operation, this.backend);
    const version = await this.apiVersion(options);
    if (spec.minVersion) checkMinVersion(spec.minVersion, version, operation, this.backend);
    const req = this.#encode(spec, params, operation, version, options);
    const call = this.#context(operation, version, req);
    const notModified = NOT_MODIFIED_ANSWERS.has(spec.id);
    try {
      const res = await send(this.pool, req, { receive: reader.receive, notModified, ...this.#jsonCap });
      return reader.read(res, call);
    } catch (err) {
      throw call.mapError(err);
    }
  }

  /** What the readers and the error mapping know of a call. */
  #context(operation: string, version: string, req: RawRequest): Call {
    return {
      operation,
      version,
      backend: this.backend,
      maxLineBytes: this.#bounds.maxLineBytes,
      idleTimeout: req.idleTimeout ?? 0,
      mapError: (err) => errorFromTransport(err, operation, this.endpoint.display, this.backend, req.signal),
      atEnd: () => this.#daemonStillThere(operation),
    };
  }

  /**
   * After a stream that ends only when its connection closes: throw UnavailableError if the daemon no
   * longer answers a ping, since then the close was the daemon going away (killed, crashed, restarted),
   * not the end of the output. Any other answer, or none within 2 s, leaves the end as it was.
   */
  async #daemonStillThere(operation: string): Promise<void> {
    try {
      await this.#ping(2000);
    } catch (err) {
      const mapped = errorFromTransport(err, operation, this.endpoint.display, this.backend);
      if (mapped.code !== "Unavailable") return;
      const why = mapped.message.slice(mapped.message.lastIndexOf(": ") + 2);
      throw new UnavailableError(
        `${operation}: the stream's connection closed and ${this.endpoint.display} no longer answers: ${why}`,
        { operation, backend: this.backend, status: mapped.status, cause: err },
      );
    }
  }

  /** The request for a call: its parameters and body encoded as the table says, its bounds applied. */
  #encode(
    spec: OperationSpec,
    params: Params,
    operation: string,
    version: string,
    options: RequestOptions,
  ): RawRequest {
    let path = spec.path;
    const query = new URLSearchParams();
    const headers: Record<string, string> = {};
    for (const p of spec.params) {
      const value = params[p.name];
      if (value === undefined || value === null) {
        if (p.required && p.in === "path") {
          throw new ValidationError(`${operation}: missing required parameter "${p.name}"`, { operation });
        }
        continue;
      }
      if (p.in === "path") {
        if (typeof value !== "string" || value === "") {
          throw new ValidationError(`${operation}: parameter "${p.name}" must be a non-empty string`, {
            operation,
          });
        }
        path = path.replace(`{${p.wire}}`, encodePathSegment(value, p.name, operation));
      } else if (p.in === "query") {
        if (p.encoding === "json")
          query.set(p.wire, typeof value === "string" ? value : JSON.stringify(value));
        else if (Array.isArray(value)) for (const v of value) query.append(p.wire, String(v));
        else query.set(p.wire, String(value));
      } else {
        headers[p.wire] =
          p.encoding === "base64json"
            ? base64url(typeof value === "string" ? value : JSON.stringify(value))
            : String(value);
      }
    }
    const qs = query.toString();
    let body: unknown;
    if (spec.body !== "none" && params.body !== undefined) {
      if (spec.body === "json") {
        body = JSON.stringify(params.body);
        headers["content-type"] = "application/json";
      } else if (spec.body === "tar") {
        const b = params.body;
        body =
          b instanceof Uint8Array || b instanceof Readable
            ? b
            : Readable.from(b as AsyncIterable<Uint8Array>);
        headers["content-type"] = spec.bodyContentType ?? "application/x-tar";
      } else {
        body = String(params.body);
        headers["content-type"] = spec.bodyContentType ?? "text/plain";
      }
    } else if (spec.body === "json" && spec.method === "POST") {
      // Some POSTs need a JSON content type even without a body (Podman is strict about it).
      headers["content-type"] = "application/json";
    }
    return {
      path: `/v${version}${qs ? `${path}?${qs}` : path}`,
      method: spec.method,
      headers: { ...headers, ...options.headers },
      body: body as RawRequest["body"],
      timeout: options.timeout ?? this.#bounds.timeout,
      idleTimeout: options.idleTimeout ?? this.#bounds.idleTimeout,
      signal: options.signal,
    };
  }

  /** Close every connection; calls in flight fail. */
  async close(): Promise<void> {
    await this.pool.close();
    await this.ssh?.close();
  }
}

/** What the readers need to know of the call they read for. */
interface Call extends BodyContext {
  /** The API version the call was sent with. */
  version: string;
  /** Most bytes of one NDJSON line. */
  maxLineBytes: number;
  /** An upgraded connection's longest silence in ms (0 = none). */
  idleTimeout: number;
  /** Run when a close-delimited stream ends by itself: throws if the daemon has gone. */
  atEnd: () => Promise<void>;
}

/** How one response kind is received and read into what the call returns. */
interface Reader {
  receive: Receive;
  read(res: Received[Receive], call: Call): unknown;
}

/** A row of `readers`: send() resolves to Received[R] for `receive: R`, so `read` gets what it takes. */
const reader = <R extends Receive>(receive: R, read: (res: Received[R], call: Call) => unknown): Reader =>
  ({ receive, read }) as Reader;

/** Throws ApiVersionError when the connection's API version is older than the operation's. */
function checkMinVersion(needed: string, version: string, operation: string, backend: string): void {
  if (compareVersions(version, needed) >= 0) return;
  throw new ApiVersionError(
    `${operation} needs Engine API ${needed}, but this connection uses ${version}`,
    needed,
    version,
    { operation, backend },
  );
}

/** How to read a stdout/stderr body. Engines from API 1.42 say so in Content-Type, but only on a logs
 *  body or an upgraded (101) connection: a hijacked 200 answer (exec start without `Upgrade`) says
 *  raw-stream whatever it carries (Docker 28 does). Older engines (Docker 20.10, Podman 4) send the same
 *  type for both. Where the type cannot be trusted the first bytes decide: a multiplexed body starts with
 *  a frame header [0-3, 0, 0, 0], which TTY output never plausibly does. */
function streamMode(value: string | string[] | undefined, version: string, hijacked: boolean): StreamMode {
  const ct = (Array.isArray(value) ? value[0] : value) ?? "";
  if (ct.includes("multiplexed-stream")) return "multiplexed";
  if (ct.includes("raw-stream") && !hijacked && compareVersions(version, "1.42") >= 0) return "raw";
  return "sniff";
}

/** What each response kind becomes, read from an answer whose status send() has found to answer the call
 *  (as bollard's process_into_value / process_into_stream / process_upgraded). */
const readers: Record<ResponseKind, Reader> = {
  json: reader("buffer", (res, call) => {
    const text = res.body.toString("utf8");
    try {
      return text.trim() === "" ? undefined : JSON.parse(text);
    } catch (cause) {
      throw new ProtocolError(`${call.operation}: the daemon sent invalid JSON`, {
        operation: call.operation,
        cause,
      });
    }
  }),
  text: reader("buffer", (res) => res.body.toString("utf8")),
  empty: reader("buffer", (res) => ({ body: undefined, headers: res.headers })),
  ndjson: reader("stream", (res, call) => jsonStream(res.body, call, call.maxLineBytes)),
  tar: reader("stream", (res, call) => tarStream(res.body, res.headers, call)),
  stream: reader("stream", (res, call) => {
    // A hijacked body (exec start, attach) has neither a length nor chunks: it ends when the connection
    // closes, and so does it when the daemon dies. Such a stream is checked at its end.
    const { headers } = res;
    const closeDelimited =
      headers["content-length"] === undefined && headers["transfer-encoding"] === undefined;
    const mode = streamMode(headers["content-type"], call.version, closeDelimited);
    return frameStream(res.body, mode, call, closeDelimited ? call.atEnd : undefined);
  }),
  upgrade: reader("upgrade", (res, call) => {
    const mode = streamMode(res.headers["content-type"], call.version, false);
    return upgradedStream(res.socket, mode, call, call.idleTimeout, call.atEnd);
  }),
};
