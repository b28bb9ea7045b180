// The Kubernetes channel WebSocket protocol the CRI streaming server speaks: every binary frame starts
// with one byte naming the channel. Opening the socket is shared by exec, attach and port-forward.
import { AbortedError, ProtocolError, TimeoutError, UnavailableError } from "@berth/runtime-core";
import WebSocket from "ws";

/** Closes one channel (v5 only): frame [255, channel]. */
export const CLOSE_CHANNEL = 255;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;

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
  setup: (ws: WebSocket) => T,
): Promise<T> {
  const { signal, operation } = options;
  const details = { operation, backend: "cri" };
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortedError(`${operation}: aborted`, { ...details, cause: signal.reason }));
      return;
    }
    const wsUrl = url.replace(/^http/, "ws");
    const ws = new WebSocket(wsUrl, [...protocols], {
      handshakeTimeout: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    });
    ws.binaryType = "nodebuffer";
    const onAbort = () => {
      ws.terminate();
      reject(new AbortedError(`${operation}: aborted`, { ...details, cause: signal?.reason }));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const done = () => {
      signal?.removeEventListener("abort", onAbort);
      ws.removeAllListeners("error");
      ws.removeAllListeners("unexpected-response");
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
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        if (body.length < 4096) body += c;
      });
      res.on("end", () => {
        ws.terminate();
        reject(
          new ProtocolError(`${operation}: streaming server answered ${res.statusCode}: ${body.trim()}`, {
            ...details,
            status: res.statusCode,
            daemonMessage: body.trim(),
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
export function messageBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
