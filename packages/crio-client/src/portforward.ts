// Port-forward over the CRI streaming URL. Each forwarded connection is a Duplex over one of two transports:
//
// - SPDY/3.1 (spdy/portforward.ts): a data stream and an error stream, both named by `port` and
//   `requestID` headers. Ending the writable side sends FIN on the data stream, so the server sees EOF
//   (an HTTP/1.0 client, a `nc` that waits for EOF...).
// - WebSocket: each forwarded port takes two channels, data (2n) and error (2n+1); the server starts each
//   with two bytes, the port in little-endian, and the client writes raw data on the data channel. Like
//   v4 exec there is no half-close: ending the writable side sends nothing.
//
// `transport: "auto"` (the default) tries SPDY and falls back to WebSocket when the server refuses it.

import { createServer, type Server, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { type BerthError, DaemonError, ProtocolError, UnavailableError } from "@berth/runtime-core";
import {
  type ChannelSocket,
  frame,
  MAX_ERROR_CHANNEL_BYTES,
  messageBuffer,
  wsProtocolViolation,
} from "./channel.js";
import { abortedError } from "./handshake.js";
import { openSpdyPortForwardChannels } from "./spdy/portforward.js";
import { openStreaming } from "./streaming.js";
import {
  DeferredSink,
  type PortForwardChannels,
  type PortForwardSink,
  type StreamTransport,
  type StreamTransportOption,
} from "./transport.js";

/** The WebSocket subprotocols asked for a port-forward connection. */
export const PORT_FORWARD_PROTOCOLS = ["v4.channel.k8s.io"] as const;

/** Options of openPortForward(). */
export interface PortForwardOptions {
  /** Closes the connection: the stream is destroyed with an AbortedError once the signal fires. */
  signal?: AbortSignal | undefined;
  /** Milliseconds the connection's upgrade may take, then a TimeoutError. */
  handshakeTimeout?: number | undefined;
  /** "auto" (default), "spdy" or "websocket". */
  transport?: StreamTransportOption | undefined;
  /** For "auto": a fresh URL for the WebSocket attempt after the server refused SPDY (URLs are single-use). */
  fallbackUrl?: (() => Promise<string>) | undefined;
  /** Hosts besides loopback the runtime's streaming URL may name (see checkStreamingUrl). */
  streamingHosts?: readonly string[] | undefined;
}

/**
 * One forwarded connection to a port in the pod's network namespace, as a Duplex. An error the runtime
 * reports on the error channel destroys the stream with a DaemonError; a dropped connection with an
 * UnavailableError.
 */
export class PortForwardStream extends Duplex {
  /** The port inside the sandbox. */
  readonly port: number;
  /** The wire the connection runs over. */
  readonly transport: StreamTransport;
  readonly #channels: PortForwardChannels;
  #error = "";

  constructor(channels: PortForwardChannels, port: number, signal?: AbortSignal) {
    super();
    this.#channels = channels;
    this.port = port;
    this.transport = channels.transport;
    const operation = "PortForward";
    const onAbort = () => this.destroy(abortedError(operation, signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    channels.start({
      data: (chunk) => {
        if (!this.push(chunk)) channels.pause();
      },
      error: (text) => {
        this.#error += text;
        if (this.#error.length > MAX_ERROR_CHANNEL_BYTES) {
          this.#error = "";
          const what = `the error channel carries over ${MAX_ERROR_CHANNEL_BYTES} bytes (an error is short)`;
          this.destroy(
            new ProtocolError(`${operation} to port ${port}: ${what}`, { operation, backend: "cri" }),
          );
        }
      },
      closed: ({ dropped, error }) => {
        signal?.removeEventListener("abort", onAbort);
        const message = this.#error.trim();
        if (message) {
          this.destroy(
            new DaemonError(`${operation} to port ${port}: ${message}`, {
              operation,
              backend: "cri",
              daemonMessage: message,
            }),
          );
        } else if (dropped) {
          this.destroy(
            error ??
              new UnavailableError(`${operation} to port ${port}: connection dropped`, {
                operation,
                backend: "cri",
              }),
          );
        } else this.push(null);
      },
    });
  }

  /** Node's Duplex hook: resumes reading from the server. */
  override _read(): void {
    this.#channels.resume();
  }

  /** Node's Duplex hook: sends a chunk to the port. */
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#channels.write(chunk, cb);
  }

  /** Node's Duplex hook: half-closes the connection where the transport can. */
  override _final(cb: (err?: Error | null) => void): void {
    this.#channels.end(cb);
  }

  /** Node's Duplex hook: closes the connection. */
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#channels.close();
    cb(err);
  }
}

/** The port-forward WebSocket as PortForwardChannels. */
export function websocketPortForwardChannels(ws: ChannelSocket, port: number): PortForwardChannels {
  const operation = "PortForward";
  const prefix = [2, 2];
  const deliveries = new DeferredSink<PortForwardSink>(() => ws.terminate());
  const emit = (f: (s: PortForwardSink) => void, bytes = 0) => deliveries.emit(f, bytes);
  let error: BerthError | undefined;
  ws.on("message", (data) => {
    let buf = messageBuffer(data);
    const channel = buf[0];
    if (channel !== 0 && channel !== 1) return;
    buf = buf.subarray(1);
    // Drop the port prefix the server sends first on each channel.
    const skip = Math.min(prefix[channel] ?? 0, buf.length);
    prefix[channel] = (prefix[channel] ?? 0) - skip;
    buf = buf.subarray(skip);
    if (!buf.length) return;
    if (channel === 0) emit((s) => s.data(buf), buf.length);
    else {
      const text = buf.toString("utf8");
      emit((s) => s.error(text), buf.length);
    }
  });
  ws.on("error", (err) => {
    if (wsProtocolViolation(err)) {
      const what = `the streaming server broke the WebSocket protocol: ${err.message}`;
      error ??= new ProtocolError(`${operation} to port ${port}: ${what}`, {
        operation,
        backend: "cri",
        cause: err,
      });
    }
  });
  ws.once("close", (code) =>
    emit((s) => s.closed(error ? { dropped: true, error } : { dropped: code === 1006 })),
  );
  return {
    transport: "websocket",
    start(s) {
      deliveries.start(s);
    },
    write(chunk, cb) {
      if (ws.readyState !== ws.OPEN) {
        cb(
          new UnavailableError(`${operation} to port ${port}: stream closed`, { operation, backend: "cri" }),
        );
        return;
      }
      ws.send(frame(0, chunk), cb);
    },
    end: (cb) => cb(),
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    close() {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    },
  };
}

/** Connect to a port-forward URL the runtime returned, for one port. */
export function openPortForward(
  url: string,
  port: number,
  options: PortForwardOptions = {},
): Promise<PortForwardStream> {
  return openStreaming(
    url,
    { ...options, operation: "PortForward" },
    {
      spdy: (checked) =>
        openSpdyPortForwardChannels(checked, port, {
          signal: options.signal,
          handshakeTimeout: options.handshakeTimeout,
        }),
      overSpdy: (channels) => new PortForwardStream(channels, port, options.signal),
      protocols: PORT_FORWARD_PROTOCOLS,
      websocketUrl: (u) => u.searchParams.set("port", String(port)),
      overWebSocket: (ws) =>
        new PortForwardStream(websocketPortForwardChannels(ws, port), port, options.signal),
    },
  );
}

/** Options of listenPortForward(). */
export interface ListenOptions {
  /** Local address to listen on (default 127.0.0.1). */
  host?: string;
  /** Local port (default 0: any free port). */
  localPort?: number;
}

/** A local listener that forwards each connection into the sandbox. */
export interface PortForwardListener {
  /** The listening net.Server. */
  server: Server;
  /** The local port actually bound. */
  port: number;
  /** Stops listening and closes the connections it forwarded. */
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
