// Exec and attach over SPDY: the Kubernetes remote-command protocol as the streaming server's
// createHttpStreamStreams expects it. The client opens one stream per channel, each named by a
// `streamType` header (error, stdin, stdout, stderr, resize); the server waits until every stream the
// request asked for has been replied to, then runs the command. Ending stdin is a FIN on its stream. The
// exit comes on the error stream: a JSON metav1.Status from v4 on, plain text (failures only) before.
import { type BerthError, ProtocolError, TimeoutError, ValidationError } from "@berth/runtime-core";
import { abortedError } from "../handshake.js";
import { type ChannelsEnd, type ChannelsSink, DeferredSink, type StreamChannels } from "../transport.js";
import { SpdyConnectionChannels } from "./channels.js";
import type { SpdyConnection, SpdyStream, StreamEnd } from "./connection.js";
import { DEFAULT_SPDY_HANDSHAKE_TIMEOUT_MS, upgradeToSpdy } from "./upgrade.js";

/** Header naming a stream's role. */
export const HEADER_STREAM_TYPE = "streamtype";

/** v1 and v2 predate the resize stream. */
const NO_RESIZE = new Set(["", "channel.k8s.io", "v2.channel.k8s.io"]);

export interface SpdyExecOptions {
  operation: string;
  /** Subprotocols to offer, best first. */
  protocols: readonly string[];
  /** The Exec/Attach request's flags: exactly these streams are opened. */
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  signal?: AbortSignal | undefined;
  /** Milliseconds for the upgrade and again for the streams' replies (default 30 s). */
  handshakeTimeout?: number | undefined;
}

/** Upgrade `url` to SPDY and open the exec/attach streams; resolves once the server has replied to all. */
export async function openSpdyExecChannels(url: string, options: SpdyExecOptions): Promise<StreamChannels> {
  const { connection, protocol } = await upgradeToSpdy(url, {
    operation: options.operation,
    protocols: options.protocols,
    signal: options.signal,
    handshakeTimeout: options.handshakeTimeout,
  });
  const channels = new SpdyExecChannels(connection, protocol, options);
  await awaitReplies(connection, channels.streams, options);
  return channels;
}

/**
 * Wait for the server's reply to every stream, within the handshake timeout and the caller's signal. On
 * failure the connection is destroyed.
 */
export async function awaitReplies(
  connection: SpdyConnection,
  streams: readonly SpdyStream[],
  options: { operation: string; signal?: AbortSignal | undefined; handshakeTimeout?: number | undefined },
): Promise<void> {
  const { operation, signal } = options;
  const details = { operation, backend: "cri" };
  const timeout = options.handshakeTimeout ?? DEFAULT_SPDY_HANDSHAKE_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const interrupted = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new TimeoutError(
            `${operation}: the streaming server did not accept the streams within ${timeout} ms`,
            details,
          ),
        ),
      timeout,
    );
    onAbort = () => reject(abortedError(operation, signal));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([Promise.all(streams.map((s) => s.reply)), interrupted]);
  } catch (err) {
    connection.destroy(err as BerthError);
    throw err;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

class SpdyExecChannels extends SpdyConnectionChannels implements StreamChannels {
  readonly protocol: string;
  readonly stdinClosable = true;
  /** Every stream opened, in order. */
  readonly streams: SpdyStream[] = [];
  readonly #stdin: SpdyStream | undefined;
  readonly #resize: SpdyStream | undefined;
  readonly #operation: string;
  readonly #deliveries: DeferredSink<ChannelsSink>;
  /** Streams the server writes to that have not ended yet. */
  #serverOpen = 0;
  #errorEnd: StreamEnd | undefined;
  #sawStatus = false;
  #reported = false;

  constructor(conn: SpdyConnection, protocol: string, options: SpdyExecOptions) {
    super(conn);
    this.protocol = protocol;
    this.#operation = options.operation;
    // Output before every stream is accepted is a server out of protocol: held only so far.
    this.#deliveries = new DeferredSink(() =>
      conn.destroy(
        new ProtocolError(
          `${options.operation}: the streaming server sent output before accepting the streams`,
          {
            operation: options.operation,
            backend: "cri",
          },
        ),
      ),
    );
    const emit = (f: (sink: ChannelsSink) => void, bytes = 0) => this.#deliveries.emit(f, bytes);
    const fromServer = (type: string, ondata: (data: Buffer) => void) => {
      this.#serverOpen++;
      return this.#open(type, {
        ondata,
        onend: (end) => {
          if (type === "error") this.#errorEnd = end;
          // Once the server has ended everything it writes, nothing more can come: the session is over
          // (whether or not the server closes the connection promptly).
          if (--this.#serverOpen === 0) {
            this.#report(null);
            conn.close();
          }
        },
      });
    };
    fromServer("error", (data) => {
      this.#sawStatus = true;
      emit((s) => s.status(data), data.length);
    });
    this.#stdin = options.stdin ? this.#open("stdin", {}) : undefined;
    if (options.stdout) fromServer("stdout", (data) => emit((s) => s.stdout(data), data.length));
    // The server drops stderr for a TTY (it is merged into stdout) and expects no stream for it.
    if (options.stderr && !options.tty)
      fromServer("stderr", (data) => emit((s) => s.stderr(data), data.length));
    this.#resize = options.tty && !NO_RESIZE.has(protocol) ? this.#open("resize", {}) : undefined;

    void conn.closed.then((c) => this.#report(c.error));
  }

  /** Tell the sink the session is over, once. `null`: the server ended every stream it writes. */
  #report(connectionError: BerthError | undefined | null): void {
    if (this.#reported) return;
    const clean = this.#errorEnd !== undefined && this.#errorEnd.kind !== "lost";
    if (connectionError === null && !clean) return;
    this.#reported = true;
    const error = connectionError ?? undefined;
    const end: ChannelsEnd = {
      // A transport error matters only when it cost the status.
      error: clean || this.#sawStatus ? undefined : error,
      clean,
      detail: clean ? "closed by the server" : (error?.message ?? "connection closed"),
    };
    this.#deliveries.emit((s) => s.closed(end));
  }

  #open(type: string, handlers: Parameters<SpdyConnection["openStream"]>[1]): SpdyStream {
    const stream = this.conn.openStream({ [HEADER_STREAM_TYPE]: type }, handlers);
    this.streams.push(stream);
    return stream;
  }

  start(sink: ChannelsSink): void {
    this.#deliveries.start(sink);
  }

  writeStdin(chunk: Buffer, cb: (err?: Error | null) => void): void {
    if (this.#stdin) this.#stdin.write(chunk).then(() => cb(), cb);
    else cb(new ValidationError(`${this.#operation}: the session was opened without stdin`));
  }

  endStdin(cb: (err?: Error | null) => void): void {
    if (this.#stdin) this.#stdin.end().then(() => cb(), cb);
    else cb();
  }

  resize(width: number, height: number): void {
    this.#resize?.write(Buffer.from(JSON.stringify({ Width: width, Height: height }))).catch(() => {});
  }

  terminate(): void {
    this.conn.destroy();
  }
}
