// Port-forward over the CRI streaming URL, WebSocket variant (the kubelet's and containerd's stream server
// speak it next to SPDY). Each forwarded port takes two channels, data (2n) and error (2n+1); the server
// starts each with two bytes, the port in little-endian, and the client writes raw data on the data
// channel. Like v4 exec there is no half-close: ending the writable side sends nothing.

import { createServer, type Server, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { AbortedError, DaemonError, UnavailableError } from "@berth/runtime-core";
import type WebSocket from "ws";
import { frame, messageBuffer, openChannelSocket } from "./channel.js";

export const PORT_FORWARD_PROTOCOLS = ["v4.channel.k8s.io"] as const;

export interface PortForwardOptions {
  signal?: AbortSignal | undefined;
  handshakeTimeout?: number | undefined;
}

/** One forwarded connection to a port in the pod's network namespace. */
export class PortForwardStream extends Duplex {
  readonly port: number;
  readonly #ws: WebSocket;
  #prefix = [2, 2];
  #error = "";

  constructor(ws: WebSocket, port: number, signal?: AbortSignal) {
    super();
    this.#ws = ws;
    this.port = port;
    const operation = "PortForward";
    const onAbort = () =>
      this.destroy(new AbortedError(`${operation}: aborted`, { operation, backend: "cri" }));
    signal?.addEventListener("abort", onAbort, { once: true });
    ws.on("message", (data) => {
      let buf = messageBuffer(data);
      const channel = buf[0];
      if (channel !== 0 && channel !== 1) return;
      buf = buf.subarray(1);
      // Drop the port prefix the server sends first on each channel.
      const skip = Math.min(this.#prefix[channel] ?? 0, buf.length);
      this.#prefix[channel] = (this.#prefix[channel] ?? 0) - skip;
      buf = buf.subarray(skip);
      if (!buf.length) return;
      if (channel === 0) {
        if (!this.push(buf)) ws.pause();
      } else this.#error += buf.toString("utf8");
    });
    ws.on("error", () => {});
    ws.once("close", (code) => {
      signal?.removeEventListener("abort", onAbort);
      if (this.#error) {
        this.destroy(
          new DaemonError(`${operation} to port ${port}: ${this.#error.trim()}`, {
            operation,
            backend: "cri",
            daemonMessage: this.#error.trim(),
          }),
        );
      } else if (code === 1006) {
        this.destroy(new UnavailableError(`${operation} to port ${port}: connection dropped`, { operation }));
      } else this.push(null);
    });
  }

  override _read(): void {
    this.#ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#ws.readyState !== this.#ws.OPEN) {
      cb(
        new UnavailableError(`PortForward to port ${this.port}: stream closed`, { operation: "PortForward" }),
      );
      return;
    }
    this.#ws.send(frame(0, chunk), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING)
      this.#ws.close();
    cb(err);
  }
}

/** Connect to a port-forward URL the runtime returned, for one port. */
export function openPortForward(
  url: string,
  port: number,
  options: PortForwardOptions = {},
): Promise<PortForwardStream> {
  const u = new URL(url);
  u.searchParams.set("port", String(port));
  return openChannelSocket(
    u.toString(),
    PORT_FORWARD_PROTOCOLS,
    { operation: "PortForward", signal: options.signal, handshakeTimeout: options.handshakeTimeout },
    (ws) => new PortForwardStream(ws, port, options.signal),
  );
}

export interface ListenOptions {
  /** Local address to listen on (default 127.0.0.1). */
  host?: string;
  /** Local port (default 0: any free port). */
  localPort?: number;
}

export interface PortForwardListener {
  server: Server;
  /** The local port actually bound. */
  port: number;
  close(): Promise<void>;
}

/** Listen locally and forward each accepted connection through a new port-forward stream. */
export async function listenPortForward(
  connect: () => Promise<Duplex>,
  options: ListenOptions = {},
): Promise<PortForwardListener> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.pause();
    connect().then(
      (remote) => {
        socket.pipe(remote);
        remote.pipe(socket);
        remote.on("error", () => socket.destroy());
        socket.on("error", () => remote.destroy());
        socket.once("close", () => remote.destroy());
        socket.resume();
      },
      () => socket.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.localPort ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
