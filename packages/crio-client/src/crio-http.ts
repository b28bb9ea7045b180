// CRI-O's own HTTP endpoints, served on the same unix socket as its CRI gRPC API (what `crio status`
// reads): GET /info, /containers/{id}, /config (TOML), /pause/{id}, /unpause/{id}.
import { request } from "node:http";
import type { GrpcCallOptions } from "@berth/grpc";
import {
  AbortedError,
  type BerthErrorDetails,
  ConflictError,
  DaemonError,
  NotFoundError,
  ProtocolError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
  UnsupportedError,
} from "@berth/runtime-core";
import { parse as parseToml } from "smol-toml";
import { DEFAULT_CRI_ENDPOINTS, unixSocketPath } from "./endpoint.js";

/** One user-namespace id range. */
export interface CrioIdMapping {
  /** First id inside the container. */
  container_id: number;
  /** The host id it maps to. */
  host_id: number;
  /** How many ids the range holds. */
  size: number;
}

/** GET /info. */
export interface CrioInfo {
  /** The containers/storage driver ("overlay", "vfs"). */
  storage_driver: string;
  /** Where the image store lives, when apart from `storage_root`. */
  storage_image?: string;
  /** containers/storage's root directory. */
  storage_root: string;
  /** The cgroup manager CRI-O uses. */
  cgroup_driver?: "systemd" | "cgroupfs" | (string & {});
  /** The id mappings new user namespaces get by default. */
  default_id_mappings?: {
    /** User id ranges. */
    uids: CrioIdMapping[] | null;
    /** Group id ranges. */
    gids: CrioIdMapping[] | null;
  };
  [key: string]: unknown;
}

/** GET /containers/{id}: CRI-O's view of one container (or sandbox infra container). */
export interface CrioContainerInfo {
  /** The container's name. */
  name: string;
  /** Host pid of its process (0 when not running). */
  pid: number;
  /** The image as the container was created from it. */
  image: string;
  /** The image's resolved reference (with digest). */
  image_ref?: string;
  /** Nanoseconds since the epoch; a bigint because JSON numbers this large lose precision as doubles. */
  created_time: bigint;
  /** The container's labels. */
  labels: Record<string, string>;
  /** The container's annotations, as the CRI client set them. */
  annotations: Record<string, string>;
  /** CRI-O's own io.kubernetes.cri-o.* annotations. */
  crio_annotations?: Record<string, string>;
  /** Its CRI log file. */
  log_path: string;
  /** Its root filesystem's mount point. */
  root: string;
  /** The id of its pod sandbox. */
  sandbox: string;
  /** Its pod's IP addresses. */
  ip_addresses?: string[] | null;
  [key: string]: unknown;
}

/** GET /config, parsed: crio.conf's tables. Only the commonly read keys are typed. */
export interface CrioConfig {
  /** The `[crio]` table and its sub-tables. */
  crio?: {
    /** containers/storage's root directory. */
    root?: string;
    /** containers/storage's state directory. */
    runroot?: string;
    /** The storage driver. */
    storage_driver?: string;
    /** Default directory of container logs. */
    log_dir?: string;
    /** `[crio.api]`: where CRI-O listens. */
    api?: {
      /** The CRI socket. */
      listen?: string;
      /** The streaming server's address. */
      stream_address?: string;
      /** The streaming server's port. */
      stream_port?: string;
      [key: string]: unknown;
    };
    /** `[crio.runtime]`: the OCI runtimes. */
    runtime?: {
      /** The runtime handler used when none is asked for. */
      default_runtime?: string;
      /** "systemd" or "cgroupfs". */
      cgroup_manager?: string;
      /** The runtime handlers, by name. */
      runtimes?: Record<
        string,
        {
          /** The runtime's binary. */
          runtime_path?: string;
          /** "oci" or "vm". */
          runtime_type?: string;
          [key: string]: unknown;
        }
      >;
      [key: string]: unknown;
    };
    /** `[crio.image]`. */
    image?: {
      /** The image pod sandboxes' infra containers run. */
      pause_image?: string;
      [key: string]: unknown;
    };
    /** `[crio.network]`: CNI. */
    network?: {
      /** Where CNI network configs are read. */
      network_dir?: string;
      /** Where CNI plugins are looked for. */
      plugin_dirs?: string[];
      [key: string]: unknown;
    };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** Where CrioHttpClient connects. */
export interface CrioHttpClientOptions {
  /** Socket path or unix:// endpoint; default CRI-O's /var/run/crio/crio.sock. */
  socketPath?: string;
  /** Default deadline per request, ms (default 30 s). */
  timeout?: number;
}

type RequestOptions = Omit<GrpcCallOptions, "metadata">;

/** Largest body read from an endpoint (CRI-O's answers are a few KiB; /config tens). */
export const MAX_CRIO_BODY_BYTES = 4 * 1024 * 1024;
/** How much of an error body is kept for the message. */
const MAX_CRIO_ERROR_BYTES = 64 * 1024;

/**
 * A client of CRI-O's own HTTP endpoints on its socket (what `crio status` reads): info, a container's
 * record, the running config, pause and unpause. Errors are berth errors (404 NotFoundError, an
 * unreachable socket UnavailableError, past the deadline TimeoutError).
 */
export class CrioHttpClient {
  /** The socket path requests go to. */
  readonly socketPath: string;
  readonly #timeout: number;

  constructor(options: CrioHttpClientOptions = {}) {
    const endpoint = options.socketPath ?? DEFAULT_CRI_ENDPOINTS[0];
    this.socketPath = unixSocketPath(endpoint) ?? endpoint;
    this.#timeout = options.timeout ?? 30_000;
  }

  /** CRI-O's storage and cgroup settings (GET /info). */
  info(options?: RequestOptions): Promise<CrioInfo> {
    return this.#json<CrioInfo>("/info", "info", options);
  }

  /** CRI-O's record of a container; NotFoundError for an id it does not know. */
  async inspectContainer(id: string, options?: RequestOptions): Promise<CrioContainerInfo> {
    const info = await this.#json<CrioContainerInfo>(
      `/containers/${encodeURIComponent(id)}`,
      "containers.inspect",
      options,
      // Quote the nanosecond timestamp before JSON.parse sees it, then make it a bigint.
      (text) => text.replace(/("created_time"\s*:\s*)(-?\d+)/, '$1"$2"'),
    );
    const created: unknown = info.created_time ?? "0";
    if (!(typeof created === "string" && /^-?\d+$/.test(created)) && !Number.isSafeInteger(created)) {
      throw new ProtocolError("containers.inspect: CRI-O sent a created_time that is not an integer", {
        operation: "containers.inspect",
        backend: "crio",
      });
    }
    info.created_time = BigInt(created as string | number);
    return info;
  }

  /** The running configuration as CRI-O prints it (crio.conf TOML). */
  async configText(options?: RequestOptions): Promise<string> {
    return (await this.#get("/config", "config", options)).toString("utf8");
  }

  /** The running configuration, parsed. */
  async config(options?: RequestOptions): Promise<CrioConfig> {
    const text = await this.configText(options);
    try {
      return parseToml(text) as CrioConfig;
    } catch (cause) {
      throw new ProtocolError(`config: CRI-O sent TOML that does not parse: ${(cause as Error).message}`, {
        operation: "config",
        backend: "crio",
        cause,
      });
    }
  }

  /** Pause a container (CRI-O 1.28+; older CRI-O answers 404 page-not-found: UnsupportedError). */
  async pause(id: string, options?: RequestOptions): Promise<void> {
    await this.#get(`/pause/${encodeURIComponent(id)}`, "pause", options);
  }

  /** Resume a paused container (CRI-O 1.28+, as pause()). */
  async unpause(id: string, options?: RequestOptions): Promise<void> {
    await this.#get(`/unpause/${encodeURIComponent(id)}`, "unpause", options);
  }

  async #json<T>(
    path: string,
    operation: string,
    options?: RequestOptions,
    prepare: (text: string) => string = (t) => t,
  ): Promise<T> {
    const body = await this.#get(path, operation, options);
    let value: unknown;
    try {
      value = JSON.parse(prepare(body.toString("utf8")));
    } catch (cause) {
      throw new ProtocolError(`${operation}: CRI-O sent a body that is not JSON`, {
        operation,
        backend: "crio",
        cause,
      });
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new ProtocolError(`${operation}: CRI-O sent JSON that is not an object`, {
        operation,
        backend: "crio",
      });
    }
    return value as T;
  }

  #get(path: string, operation: string, options: RequestOptions = {}): Promise<Buffer> {
    const details: BerthErrorDetails = { operation, backend: "crio" };
    const { signal } = options;
    const timeout = options.timeout ?? this.#timeout;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new AbortedError(`${operation}: aborted`, { ...details, cause: signal.reason }));
        return;
      }
      let failure: Error | undefined;
      const req = request(
        { socketPath: this.socketPath, path, method: "GET", headers: { accept: "application/json" } },
        (res) => {
          const status = res.statusCode ?? 0;
          const ok = status >= 200 && status < 300;
          const chunks: Buffer[] = [];
          let size = 0;
          const answer = () => {
            cleanup();
            const body = Buffer.concat(chunks);
            if (ok) resolve(body);
            else reject(httpError(status, body.toString("utf8").trim(), details));
          };
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (ok && size > MAX_CRIO_BODY_BYTES) {
              failure = new ProtocolError(
                `${operation}: CRI-O's answer is over ${MAX_CRIO_BODY_BYTES} bytes`,
                details,
              );
              req.destroy(failure);
              return;
            }
            chunks.push(c);
            // An error's start says enough: the rest is not read.
            if (!ok && size >= MAX_CRIO_ERROR_BYTES) {
              chunks.splice(0, chunks.length, Buffer.concat(chunks).subarray(0, MAX_CRIO_ERROR_BYTES));
              res.removeAllListeners("end");
              res.destroy();
              answer();
            }
          });
          res.on("error", (err) => reject(failure ?? unavailable(err)));
          res.on("end", answer);
        },
      );
      const unavailable = (err: NodeJS.ErrnoException) =>
        new UnavailableError(`${operation}: cannot reach CRI-O at ${this.socketPath}: ${err.message}`, {
          ...details,
          cause: err,
        });
      const timer = setTimeout(() => {
        failure = new TimeoutError(`${operation}: no answer within ${timeout} ms`, details);
        req.destroy(failure);
      }, timeout);
      const onAbort = () => {
        failure = new AbortedError(`${operation}: aborted`, { ...details, cause: signal?.reason });
        req.destroy(failure);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      req.on("error", (err: NodeJS.ErrnoException) => {
        cleanup();
        reject(failure ?? unavailable(err));
      });
      req.end();
    });
  }
}

function httpError(status: number, message: string, details: BerthErrorDetails): Error {
  const d = { ...details, status, daemonMessage: message };
  const text = `${details.operation}: ${message || `HTTP ${status}`}`;
  // Go's mux answers an unknown route with this exact body: the endpoint is missing, not the object.
  if (status === 404 && /^404 page not found$/i.test(message)) {
    return new UnsupportedError(`${details.operation}: this CRI-O does not serve the endpoint`, d);
  }
  if (status === 404) return new NotFoundError(text, d);
  if (status === 401 || status === 403) return new UnauthorizedError(text, d);
  if (status === 409) return new ConflictError(text, d);
  // CRI-O answers a lookup miss on pause/unpause with 500 and the storage error's text.
  if (/not found|(can't|cannot|could not) find|no such|not known/i.test(message))
    return new NotFoundError(text, d);
  if (status === 503) return new UnavailableError(text, d);
  return new DaemonError(text, d);
}
