// Port-forward over SPDY, as the Kubernetes port-forward server (portforward.k8s.io) expects it: per
// forwarded connection the client opens an error stream and a data stream carrying `streamType`, `port`
// and a shared `requestID`; the server dials the port in the pod once it has both. The client half-closes
// the error stream at once (it never writes there); the server writes there only if forwarding fails,
// then ends both streams. One session carries one forwarded connection here.
import { type BerthError, ProtocolError } from "@berth/runtime-core";
import { DeferredSink, type PortForwardChannels, type PortForwardSink } from "../transport.js";
import { SpdyConnectionChannels } from "./channels.js";
import type { SpdyConnection, SpdyStream, StreamEnd } from "./connection.js";
import { awaitReplies, HEADER_STREAM_TYPE } from "./remotecommand.js";
import { upgradeToSpdy } from "./upgrade.js";

/** The SPDY subprotocol of Kubernetes port forwarding (one data and one error stream per connection). */
export const PORT_FORWARD_PROTOCOL_V1 = "portforward.k8s.io";
export const HEADER_PORT = "port";
export const HEADER_REQUEST_ID = "requestid";

export interface SpdyPortForwardOptions {
  signal?: AbortSignal | undefined;
  /** Milliseconds for the upgrade and again for the streams' replies (default 30 s). */
  handshakeTimeout?: number | undefined;
}

export async function openSpdyPortForwardChannels(
  url: string,
  port: number,
  options: SpdyPortForwardOptions = {},
): Promise<PortForwardChannels> {
  const operation = "PortForward";
  const { connection } = await upgradeToSpdy(url, {
    operation,
    protocols: [PORT_FORWARD_PROTOCOL_V1],
    signal: options.signal,
    handshakeTimeout: options.handshakeTimeout,
  });
  const channels = new SpdyPortForwardChannels(connection, port);
  await awaitReplies(connection, channels.streams, { operation, ...options });
  // Like kubectl: the client never writes on the error stream.
  channels.streams[0]?.end().catch(() => {});
  return channels;
}

class SpdyPortForwardChannels extends SpdyConnectionChannels implements PortForwardChannels {
  readonly streams: SpdyStream[];
  readonly #data: SpdyStream;
  readonly #deliveries: DeferredSink<PortForwardSink>;
  #dataEnd: StreamEnd | undefined;
  #errorEnd: StreamEnd | undefined;

  constructor(conn: SpdyConnection, port: number) {
    super(conn);
    // Data before both streams are accepted is a server out of protocol: held only so far.
    this.#deliveries = new DeferredSink(() =>
      conn.destroy(
        new ProtocolError("PortForward: the streaming server sent data before accepting the streams", {
          operation: "PortForward",
          backend: "cri",
        }),
      ),
    );
    const emit = (f: (sink: PortForwardSink) => void, bytes = 0) => this.#deliveries.emit(f, bytes);
    const headers = (type: string) => ({
      [HEADER_STREAM_TYPE]: type,
      [HEADER_PORT]: String(port),
      [HEADER_REQUEST_ID]: "0",
    });
    let reported = false;
    const report = (end: { dropped: boolean; error?: BerthError }) => {
      if (reported) return;
      reported = true;
      emit((s) => s.closed(end));
    };
    const ended = () => {
      if (!this.#dataEnd || !this.#errorEnd) return;
      // The server ends both streams when forwarding is over; the session has nothing left to carry.
      if (this.#dataEnd.kind === "fin" && this.#errorEnd.kind !== "lost") report({ dropped: false });
      conn.close();
    };
    const error = conn.openStream(headers("error"), {
      ondata: (chunk) => {
        const text = chunk.toString("utf8");
        emit((s) => s.error(text), chunk.length);
      },
      onend: (end) => {
        this.#errorEnd = end;
        ended();
      },
    });
    this.#data = conn.openStream(headers("data"), {
      ondata: (chunk) => emit((s) => s.data(chunk), chunk.length),
      onend: (end) => {
        this.#dataEnd = end;
        ended();
      },
    });
    this.streams = [error, this.#data];
    void conn.closed.then((c) => {
      const finished =
        this.#dataEnd?.kind === "fin" && this.#errorEnd !== undefined && this.#errorEnd.kind !== "lost";
      // Closed by this client (the Duplex was destroyed) is no drop; closed by the server unfinished is.
      report(!finished && c.error ? { dropped: true, error: c.error } : { dropped: false });
    });
  }

  start(sink: PortForwardSink): void {
    this.#deliveries.start(sink);
  }

  write(chunk: Buffer, cb: (err?: Error | null) => void): void {
    this.#data.write(chunk).then(() => cb(), cb);
  }

  end(cb: (err?: Error | null) => void): void {
    this.#data.end().then(() => cb(), cb);
  }
}
