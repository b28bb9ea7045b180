// Upgrading an HTTP request to SPDY/3.1 the way the Kubernetes streaming server expects (httpstream's
// Handshake and spdy.ResponseUpgrader): `Connection: Upgrade`, `Upgrade: SPDY/3.1`, and one
// `X-Stream-Protocol-Version` header line per offered subprotocol, best first. The server answers 101
// naming the one it chose, or 400/403 (no SPDY, no common protocol).
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { type BerthError, ProtocolError, TimeoutError, UnavailableError } from "@berth/runtime-core";
import { abortedError, readRefusalBody } from "../handshake.js";
import { SpdyConnection, type SpdyConnectionOptions } from "./connection.js";

export const SPDY_UPGRADE = "SPDY/3.1";
export const HEADER_PROTOCOL_VERSION = "X-Stream-Protocol-Version";
export const DEFAULT_SPDY_HANDSHAKE_TIMEOUT_MS = 30_000;

export interface SpdyUpgradeOptions extends Omit<SpdyConnectionOptions, "operation"> {
  operation: string;
  /** Subprotocols to offer, best first. */
  protocols: readonly string[];
  signal?: AbortSignal | undefined;
  /** Milliseconds the upgrade may take (default 30 s). */
  handshakeTimeout?: number | undefined;
  /** HTTP method (default POST, as kubectl and crictl send). */
  method?: string;
}

export interface SpdyUpgrade {
  connection: SpdyConnection;
  /** The subprotocol the server chose; "" when it named none (a pre-handshake server: v1). */
  protocol: string;
}

/**
 * The server answered the upgrade with an HTTP status instead of switching protocols: it does not speak
 * SPDY on this URL or shares no subprotocol. `status` holds the HTTP status.
 */
export function isUpgradeRefusal(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError && typeof err.status === "number";
}

export function upgradeToSpdy(url: string, options: SpdyUpgradeOptions): Promise<SpdyUpgrade> {
  const { operation, signal } = options;
  if (signal?.aborted) return Promise.reject(abortedError(operation, signal));
  const details = { operation, backend: "cri" };
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url.replace(/^ws/, "http"));
    } catch (cause) {
      reject(new ProtocolError(`${operation}: invalid streaming URL ${url}`, { ...details, cause }));
      return;
    }
    const request = u.protocol === "https:" ? httpsRequest : httpRequest;
    let settled = false;
    const settle = (err: BerthError | undefined, value?: SpdyUpgrade) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value as SpdyUpgrade);
    };
    const req = request(u, {
      method: options.method ?? "POST",
      headers: {
        Connection: "Upgrade",
        Upgrade: SPDY_UPGRADE,
        [HEADER_PROTOCOL_VERSION]: [...options.protocols],
        // No body: bytes after the request would reach the server's SPDY reader.
        "Content-Length": "0",
      },
    });
    const timeout = options.handshakeTimeout ?? DEFAULT_SPDY_HANDSHAKE_TIMEOUT_MS;
    const timer = setTimeout(
      () => settle(new TimeoutError(`${operation}: SPDY upgrade of ${url} took over ${timeout} ms`, details)),
      timeout,
    );
    const onAbort = () => settle(abortedError(operation, signal));
    signal?.addEventListener("abort", onAbort, { once: true });

    req.on("error", (err) =>
      settle(
        new UnavailableError(`${operation}: cannot open ${url}: ${err.message}`, { ...details, cause: err }),
      ),
    );
    req.on("response", (res: IncomingMessage) =>
      readRefusalBody(res, (body) =>
        settle(
          new ProtocolError(
            `${operation}: streaming server answered ${res.statusCode} to the SPDY upgrade: ${body}`,
            { ...details, status: res.statusCode, daemonMessage: body },
          ),
        ),
      ),
    );
    req.on("upgrade", (res: IncomingMessage, socket: Socket, head: Buffer) => {
      const fail = (message: string) => {
        socket.destroy();
        settle(new ProtocolError(`${operation}: ${message}`, details));
      };
      if (settled) {
        socket.destroy();
        return;
      }
      if (String(res.headers.upgrade ?? "").toLowerCase() !== SPDY_UPGRADE.toLowerCase())
        return fail(`server upgraded to "${res.headers.upgrade ?? ""}", not ${SPDY_UPGRADE}`);
      const chosen = res.headers[HEADER_PROTOCOL_VERSION.toLowerCase()];
      const protocol = (Array.isArray(chosen) ? chosen[0] : chosen) ?? "";
      if (protocol && !options.protocols.includes(protocol))
        return fail(`server chose unknown subprotocol "${protocol}"`);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      const connectionOptions: SpdyConnectionOptions = { operation };
      if (options.flowControl) connectionOptions.flowControl = options.flowControl;
      if (options.limits) connectionOptions.limits = options.limits;
      const connection = new SpdyConnection(socket, connectionOptions, head);
      settle(undefined, { connection, protocol });
    });
    req.end();
  });
}
