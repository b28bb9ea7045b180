// The Kubernetes channel WebSocket protocol the CRI streaming server speaks: every binary frame starts
// with one byte naming the channel. Opening the socket is shared by exec, attach and port-forward.
import { ProtocolError, TimeoutError, UnavailableError } from "@berth/runtime-core";
import WebSocket from "ws";
import { abortedError, readRefusalBody } from "./handshake.js";

/** Closes one channel (v5 only): frame [255, channel]. */
export const CLOSE_CHANNEL = 255;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
/** Largest WebSocket message accepted (the streaming servers send what one read gave them, 32 KiB). */
export const MAX_WEBSOCKET_MESSAGE_BYTES = 1024 * 1024;
/** Largest error channel accepted: it carries one small status (exec) or an error's text (port-forward). */
export const MAX_ERROR_CHANNEL_BYTES = 64 * 1024;

/**
 * The streaming URL a runtime handed out, checked before anything connects to it: http(s) or ws(s) only,
 * and a loopback host (where the runtimes serve streams by default) or one of `allowedHosts` (say, the
 * node address a runtime is configured to stream on). A runtime's answer must not send the caller's
 * stdin, or a connection, anywhere it likes.
 */
export function checkStreamingUrl(url: string, operation: string, allowedHosts: readonly string[] = []): URL {
  const details = { operation, backend: "cri" };
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new ProtocolError(`${operation}: the runtime's streaming URL ${JSON.stringify(url)} is not a URL`, {
      ...details,
      cause,
    });
  }
  if (!["http:", "https:", "ws:", "wss:"].includes(u.protocol)) {
    throw new ProtocolError(
      `${operation}: the runtime's streaming URL is ${u.protocol} (not http or ws)`,
      details,
    );
  }
  const host = bareHost(u.hostname);
  if (!isLoopback(host) && !allowedHosts.some((h) => bareHost(h) === host)) {
    throw new ProtocolError(
      `${operation}: the runtime's streaming URL names ${u.host}, which is not a loopback host; ` +
        "list it in streamingHosts to allow it",
      details,
    );
  }
  return u;
}

/** A host name compared as written: lower case, an IPv6 address without its brackets. */
function bareHost(host: string): string {
  return host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
}

function isLoopback(host: string): boolean {
  if (host === "localhost" || host.endsWith(".localhost") || host === "::1") return true;
  // 127.0.0.0/8, also written as an IPv4-mapped IPv6 address.
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** An error the ws library raised about the peer's frames (bad opcode, message over maxPayload...). */
export function wsProtocolViolation(err: Error): boolean {
  return String((err as NodeJS.ErrnoException).code ?? "").startsWith("WS_ERR_");
}

/** A message as ws delivers it (binaryType "nodebuffer"): one Buffer, or its fragments. */
export type ChannelMessage = Buffer | ArrayBuffer | Buffer[];

/**
 * What the channel protocols use of a ws WebSocket. Declared here so that the package's public types do
 * not name ws's, whose @types package every consumer compiling them would otherwise have to install.
 */
export interface ChannelSocket {
  readonly protocol: string;
  readonly readyState: number;
  readonly OPEN: number;
  readonly CONNECTING: number;
  on(event: "message", listener: (data: ChannelMessage) => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  once(event: "close", listener: (code: number, reason: Buffer) => void): unknown;
  send(data: Buffer, cb?: (err?: Error) => void): void;
  pause(): void;
  resume(): void;
  close(): void;
  terminate(): void;
}

export interface OpenChannelOptions {
  signal?: AbortSignal | undefined;
  /** Milliseconds the WebSocket upgrade may take (default 30 s). */
  handshakeTimeout?: number | undefined;
  operation: string;
}

/**
 * Open a channel WebSocket, offering `protocols` in order of preference. `setup` runs synchronously on
 * open, so its listeners see the first frames (they can arrive in the same read as the upgrade).
 */
export function openChannelSocket<T>(
  url: string,
  protocols: readonly string[],
  options: OpenChannelOptions,
  setup: (ws: ChannelSocket) => T,
): Promise<T> {
  const { signal, operation } = options;
  if (signal?.aborted) return Promise.reject(abortedError(operation, signal));
  const details = { operation, backend: "cri" };
  return new Promise((resolve, reject) => {
    const wsUrl = url.replace(/^http/, "ws");
    const ws = new WebSocket(wsUrl, [...protocols], {
      handshakeTimeout: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      maxPayload: MAX_WEBSOCKET_MESSAGE_BYTES,
      // The runtime's URL was checked; a redirect could point anywhere.
      followRedirects: false,
    });
    ws.binaryType = "nodebuffer";
    const onAbort = () => {
      ws.terminate();
      reject(abortedError(operation, signal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    // ws's handshakeTimeout is an idle timeout: a refusal whose body trickles in would outlast it.
    const timeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const timer = setTimeout(() => {
      done();
      ws.terminate();
      reject(new TimeoutError(`${operation}: opening ${url} took over ${timeout} ms`, details));
    }, timeout);
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      ws.removeAllListeners("error");
      ws.removeAllListeners("unexpected-response");
      // terminate() of a socket still connecting emits an error: nobody needs it any more.
      ws.on("error", () => {});
    };
    ws.once("open", () => {
      done();
      if (!protocols.includes(ws.protocol)) {
        ws.terminate();
        reject(new ProtocolError(`${operation}: server chose unknown subprotocol "${ws.protocol}"`, details));
        return;
      }
      try {
        resolve(setup(ws));
      } catch (err) {
        ws.terminate();
        reject(err);
      }
    });
    ws.once("unexpected-response", (_req, res) => {
      done();
      readRefusalBody(res, (body) => {
        ws.terminate();
        reject(
          new ProtocolError(`${operation}: streaming server answered ${res.statusCode}: ${body}`, {
            ...details,
            status: res.statusCode,
            daemonMessage: body,
          }),
        );
      });
    });
    ws.once("error", (err: Error) => {
      done();
      const ErrorClass = /timeout/i.test(err.message) ? TimeoutError : UnavailableError;
      reject(new ErrorClass(`${operation}: cannot open ${url}: ${err.message}`, { ...details, cause: err }));
    });
  });
}

/** One frame: the channel byte, then the payload. */
export function frame(channel: number, payload: Uint8Array | string = new Uint8Array(0)): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  const out = Buffer.allocUnsafe(body.byteLength + 1);
  out[0] = channel;
  out.set(body, 1);
  return out;
}

/** A WebSocket message as one Buffer, whatever ws handed us. */
export function messageBuffer(data: ChannelMessage): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
