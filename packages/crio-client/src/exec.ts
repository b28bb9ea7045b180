// Exec and attach over the CRI streaming URL. Two transports carry the same Kubernetes remote-command
// protocol (stdin, stdout, stderr, an error channel with a metav1.Status, resize):
//
// - SPDY/3.1 (spdy/remotecommand.ts): every channel is its own stream, so stdin can be half-closed with
//   FIN and the command sees EOF. Every Kubernetes streaming server (kubelet, containerd, CRI-O) speaks it;
//   kubectl and crictl use it.
// - WebSocket, the channel protocol (v5 when the server offers it, else v4): one frame per message, the
//   first byte naming the channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize). v4 cannot close stdin
//   short of closing the whole socket; v5 (Kubernetes 1.30's streaming server) adds a close frame
//   [255, 0]. containerd 1.6 offers v4 only, so there a WebSocket session's `stdin.end()` sends nothing.
//
// `transport: "auto"` (the default) tries SPDY and falls back to WebSocket only if the server refuses the
// SPDY upgrade. `StreamSession.stdinClosable` tells whether ending `stdin` reaches the command.
import { PassThrough, type Readable, Writable } from "node:stream";
import {
  type BerthError,
  DaemonError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from "@berth/runtime-core";
import {
  type ChannelSocket,
  CLOSE_CHANNEL,
  frame,
  MAX_ERROR_CHANNEL_BYTES,
  messageBuffer,
  wsProtocolViolation,
} from "./channel.js";
import { abortedError } from "./handshake.js";
import { openSpdyExecChannels } from "./spdy/remotecommand.js";
import { openStreaming } from "./streaming.js";
import type {
  ChannelsEnd,
  ChannelsSink,
  StreamChannels,
  StreamTransport,
  StreamTransportOption,
} from "./transport.js";

/** Kubernetes remote-command subprotocol v5: v4 plus a close signal, so stdin can be half-closed. */
export const STREAM_PROTOCOL_V5 = "v5.channel.k8s.io";
/** Subprotocol v4: the exit status comes as a JSON Status on the error channel. */
export const STREAM_PROTOCOL_V4 = "v4.channel.k8s.io";
/** Subprotocol v3: v2 plus the resize channel. */
export const STREAM_PROTOCOL_V3 = "v3.channel.k8s.io";
/** Subprotocol v2: the error channel carries the error as plain text. */
export const STREAM_PROTOCOL_V2 = "v2.channel.k8s.io";
/** The first remote-command subprotocol. */
export const STREAM_PROTOCOL_V1 = "channel.k8s.io";
/** What exec and attach offer over WebSocket, best first. */
export const EXEC_PROTOCOLS = [STREAM_PROTOCOL_V5, STREAM_PROTOCOL_V4] as const;
/** What exec and attach offer over SPDY, best first (v5 exists only for WebSocket). */
export const SPDY_EXEC_PROTOCOLS = [
  STREAM_PROTOCOL_V4,
  STREAM_PROTOCOL_V3,
  STREAM_PROTOCOL_V2,
  STREAM_PROTOCOL_V1,
] as const;

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;

/** The metav1.Status the server writes on the error channel. */
export interface StreamStatus {
  /** "Success", or "Failure" with the reason below. */
  status?: "Success" | "Failure" | (string & {});
  /** What went wrong, in words. */
  message?: string;
  /** Why, as a code word ("NonZeroExitCode", "InternalError"). */
  reason?: string;
  /** An HTTP-like status code. */
  code?: number;
  /** Further detail; for "NonZeroExitCode", the exit code is a cause with reason "ExitCode". */
  details?: {
    /** The individual causes. */
    causes?: Array<{
      /** The cause's code word ("ExitCode"). */
      reason?: string;
      /** Its value or text (the exit code, as a string). */
      message?: string;
      /** The field it is about, when any. */
      field?: string;
    }>;
  };
}

/** How an exec or attach session ended. */
export interface StreamExit {
  /** The command's exit code (attach: 0 unless the runtime reported otherwise). */
  exitCode: number;
  /** The Status the server sent (an empty one when it sent none). */
  status: StreamStatus;
}

/** Options of a StreamSession: the flags of the request it was opened with, and its bounds. */
export interface StreamSessionOptions {
  /** The operation errors name ("exec", "attach"). */
  operation: string;
  /** Whether the request asked for stdin. */
  stdin: boolean;
  /** The request's stdout flag (default true). SPDY opens exactly the streams the server expects. */
  stdout?: boolean | undefined;
  /** The request's stderr flag (default true; a TTY has none). */
  stderr?: boolean | undefined;
  /** The request's tty flag (default false); with SPDY it adds the resize stream. */
  tty?: boolean | undefined;
  /** Closes the session: `exit` fails with an AbortedError once the signal fires. */
  signal?: AbortSignal | undefined;
  /** Milliseconds the whole session may last; then it is closed with a TimeoutError. */
  timeout?: number | undefined;
  /** Milliseconds the connection's upgrade may take, then a TimeoutError. */
  handshakeTimeout?: number | undefined;
  /** "auto" (default), "spdy" or "websocket". */
  transport?: StreamTransportOption | undefined;
  /**
   * For "auto": a fresh URL for the WebSocket attempt after the server refused SPDY. CRI streaming URLs
   * are single-use and the refused upgrade spent this one. Without it the same URL is tried again.
   */
  fallbackUrl?: (() => Promise<string>) | undefined;
  /** Hosts besides loopback the runtime's streaming URL may name (see checkStreamingUrl). */
  streamingHosts?: readonly string[] | undefined;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** The Status fields this client reads, from whatever JSON the server sent; undefined if not an object. */
function statusShape(value: unknown): StreamStatus | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  const details = v.details as Record<string, unknown> | null | undefined;
  const causes = Array.isArray(details?.causes) ? details.causes : [];
  const out: StreamStatus = {};
  const [status, message, reason] = [str(v.status), str(v.message), str(v.reason)];
  if (status !== undefined) out.status = status;
  if (message !== undefined) out.message = message;
  if (reason !== undefined) out.reason = reason;
  if (typeof v.code === "number") out.code = v.code;
  if (causes.length) {
    out.details = {
      causes: causes
        .filter((c): c is Record<string, unknown> => typeof c === "object" && c !== null)
        .map((c) => ({ reason: str(c.reason), message: str(c.message), field: str(c.field) })),
    };
  }
  return out;
}

/** Exit code from a status: 0 on Success, details.causes[reason=ExitCode] on NonZeroExitCode. */
export function exitFromStatus(status: StreamStatus, operation: string): StreamExit {
  if (status.status === "Success") return { exitCode: 0, status };
  const cause = status.details?.causes?.find((c) => c.reason === "ExitCode");
  if (status.reason === "NonZeroExitCode" && cause?.message !== undefined) {
    const exitCode = Number.parseInt(cause.message, 10);
    if (Number.isInteger(exitCode)) return { exitCode, status };
  }
  throw new DaemonError(`${operation}: ${status.message ?? "stream failed"}`, {
    operation,
    backend: "cri",
    status: status.reason ?? status.status,
    daemonMessage: status.message,
  });
}

/** Whether a subprotocol writes a JSON Status on the error channel (v4 and later) or plain text. */
export function writesJsonStatus(protocol: string): boolean {
  return protocol === STREAM_PROTOCOL_V4 || protocol === STREAM_PROTOCOL_V5;
}

/**
 * The exit from what the error channel carried. v4/v5 always write a JSON Status before a clean close, so
 * nothing means the connection dropped. v1-v3 write nothing on success and only the error's text on
 * failure; the exit code is recovered from the runtime's "... exit code N" wording when present.
 */
export function exitFromErrorChannel(
  text: string,
  protocol: string,
  end: Pick<ChannelsEnd, "clean" | "detail">,
  operation: string,
): StreamExit {
  const details = { operation, backend: "cri" };
  if (writesJsonStatus(protocol)) {
    if (!text) {
      // The server always writes a Status before a clean close; none means the connection dropped.
      throw new UnavailableError(
        `${operation}: stream closed without an exit status (${end.detail})`,
        details,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      // Cut short by a dropped connection, or garbage from the server.
      if (!end.clean)
        throw new UnavailableError(`${operation}: stream closed mid-status (${end.detail})`, {
          ...details,
          cause,
        });
      throw new ProtocolError(`${operation}: error channel is not a JSON Status: ${text.slice(0, 200)}`, {
        ...details,
        cause,
      });
    }
    const status = statusShape(parsed);
    if (!status) {
      throw new ProtocolError(`${operation}: error channel holds JSON that is not a Status object`, details);
    }
    return exitFromStatus(status, operation);
  }
  if (!text) {
    if (end.clean) return { exitCode: 0, status: { status: "Success" } };
    throw new UnavailableError(`${operation}: stream closed without an exit status (${end.detail})`, details);
  }
  const codes = [...text.matchAll(/exit (?:code|status)[: ]+(\d+)/g)];
  const last = codes.at(-1)?.[1];
  if (last !== undefined) {
    return {
      exitCode: Number.parseInt(last, 10),
      status: {
        status: "Failure",
        reason: "NonZeroExitCode",
        message: text,
        details: { causes: [{ reason: "ExitCode", message: last }] },
      },
    };
  }
  throw new DaemonError(`${operation}: ${text}`, { ...details, daemonMessage: text });
}

/** A running exec or attach: stream stdin in, read stdout and stderr, await `exit`. */
export class StreamSession {
  /** The negotiated subprotocol. */
  readonly protocol: string;
  /** The wire the session runs over. */
  readonly transport: StreamTransport;
  /** The command's stdout (everything, with a TTY). */
  readonly stdout: Readable;
  /** The command's stderr (empty with a TTY). */
  readonly stderr: Readable;
  /** Present when the session was opened with stdin. Ending it closes stdin only if `stdinClosable`. */
  readonly stdin: Writable | undefined;
  /** Whether ending `stdin` reaches the command (SPDY, WebSocket v5) or is not expressible (WebSocket v4). */
  readonly stdinClosable: boolean;
  /** Settles when the server closes the stream: the exit code, or a typed error. */
  readonly exit: Promise<StreamExit>;
  readonly #channels: StreamChannels;

  constructor(channels: StreamChannels, options: StreamSessionOptions) {
    const { operation, signal } = options;
    this.#channels = channels;
    this.protocol = channels.protocol;
    this.transport = channels.transport;
    this.stdinClosable = channels.stdinClosable;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.stdout = stdout;
    this.stderr = stderr;
    // Stop reading while a reader lags, so a chatty command cannot fill memory; read again only once
    // neither lags (one stream drained while the other is full must not let more pile onto the other).
    const resume = () => {
      if (!stdout.writableNeedDrain && !stderr.writableNeedDrain) channels.resume();
    };
    stdout.on("drain", resume);
    stderr.on("drain", resume);
    const statusChunks: Buffer[] = [];
    let statusBytes = 0;
    let failure: BerthError | undefined;
    let timer: NodeJS.Timeout | undefined;

    const fail = (err: BerthError) => {
      failure ??= err;
      channels.terminate();
    };
    const onAbort = () => fail(abortedError(operation, signal));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    if (options.timeout !== undefined) {
      timer = setTimeout(
        () =>
          fail(
            new TimeoutError(`${operation}: no exit within ${options.timeout} ms`, {
              operation,
              backend: "cri",
            }),
          ),
        options.timeout,
      );
    }

    this.exit = new Promise<StreamExit>((resolve, reject) => {
      channels.start({
        stdout: (data) => {
          if (data.length && !stdout.write(data)) channels.pause();
        },
        stderr: (data) => {
          if (data.length && !stderr.write(data)) channels.pause();
        },
        status: (data) => {
          statusBytes += data.length;
          if (statusBytes > MAX_ERROR_CHANNEL_BYTES) {
            const what = `the error channel carries over ${MAX_ERROR_CHANNEL_BYTES} bytes (a status is small)`;
            return fail(new ProtocolError(`${operation}: ${what}`, { operation, backend: "cri" }));
          }
          statusChunks.push(data);
        },
        closed: (end) => {
          signal?.removeEventListener("abort", onAbort);
          if (timer) clearTimeout(timer);
          stdout.end();
          stderr.end();
          if (failure) return reject(failure);
          if (end.error) return reject(end.error);
          const text = Buffer.concat(statusChunks).toString("utf8").trim();
          try {
            resolve(exitFromErrorChannel(text, channels.protocol, end, operation));
          } catch (err) {
            reject(err);
          }
        },
      });
    });
    // Callers who only read output still get errors through `exit`; never an unhandled rejection here.
    this.exit.catch(() => {});

    if (options.stdin) {
      this.stdin = new Writable({
        write: (chunk: Buffer, _enc, cb) => channels.writeStdin(chunk, cb),
        final: (cb) => channels.endStdin(cb),
      });
      // Writes after the connection closed fail through `exit`; keep them from becoming unhandled errors.
      this.stdin.on("error", () => {});
    }
  }

  /** Tell a TTY session its new size. */
  resize(width: number, height: number): void {
    this.#channels.resize(width, height);
  }

  /** Close the connection now; the command may keep running on the runtime if it ignores a hang-up. */
  close(): void {
    this.#channels.close();
  }

  /**
   * Feed `input` to stdin (then end it, see `stdinClosable`), collect all output and the exit code.
   * Output is held in memory: for large outputs read `stdout`/`stderr` as streams instead.
   */
  async output(input?: string | Uint8Array | AsyncIterable<Uint8Array>): Promise<{
    /** Everything written to stdout. */
    stdout: Buffer;
    /** Everything written to stderr. */
    stderr: Buffer;
    /** The command's exit code. */
    exitCode: number;
  }> {
    const collect = async (r: Readable) => {
      const chunks: Buffer[] = [];
      for await (const c of r) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    };
    const out = collect(this.stdout);
    const err = collect(this.stderr);
    if (input !== undefined && this.stdin) {
      const stdin = this.stdin;
      if (typeof input === "string" || input instanceof Uint8Array) stdin.end(input);
      else {
        (async () => {
          for await (const c of input) if (!stdin.write(c)) await new Promise((r) => stdin.once("drain", r));
          stdin.end();
        })().catch(() => this.#channels.terminate());
      }
    }
    const [exit, stdout, stderr] = await Promise.all([this.exit, out, err]);
    return { stdout, stderr, exitCode: exit.exitCode };
  }
}

/** The channel WebSocket as StreamChannels. */
export function websocketChannels(ws: ChannelSocket, operation: string): StreamChannels {
  const stdinClosable = ws.protocol === STREAM_PROTOCOL_V5;
  let sink: ChannelsSink | undefined;
  const early: Buffer[] = [];
  let ended: ChannelsEnd | undefined;
  let error: BerthError | undefined;
  const deliver = (buf: Buffer, to: ChannelsSink) => {
    const payload = buf.subarray(1);
    if (buf[0] === STDOUT) to.stdout(payload);
    else if (buf[0] === STDERR) to.stderr(payload);
    else if (buf[0] === ERROR) to.status(payload);
  };
  ws.on("message", (data) => {
    const buf = messageBuffer(data);
    if (buf.length === 0) return;
    if (sink) deliver(buf, sink);
    else early.push(buf);
  });
  ws.on("error", (err) => {
    const details = { operation, backend: "cri", cause: err };
    error ??= wsProtocolViolation(err)
      ? new ProtocolError(
          `${operation}: the streaming server broke the WebSocket protocol: ${err.message}`,
          details,
        )
      : new UnavailableError(`${operation}: stream connection failed: ${err.message}`, details);
  });
  ws.once("close", (code, reason) => {
    ended = {
      error,
      clean: code === 1000,
      detail: `close code ${code}${reason.length ? `, ${reason}` : ""}`,
    };
    sink?.closed(ended);
  });
  return {
    transport: "websocket",
    protocol: ws.protocol,
    stdinClosable,
    start(s) {
      sink = s;
      for (const buf of early.splice(0)) deliver(buf, s);
      if (ended) s.closed(ended);
    },
    writeStdin(chunk, cb) {
      if (ws.readyState !== ws.OPEN)
        return cb(new UnavailableError(`${operation}: stream closed`, { operation, backend: "cri" }));
      ws.send(frame(STDIN, chunk), cb);
    },
    endStdin(cb) {
      if (stdinClosable && ws.readyState === ws.OPEN) ws.send(frame(CLOSE_CHANNEL, Uint8Array.of(STDIN)), cb);
      else cb();
    },
    resize(width, height) {
      if (ws.readyState === ws.OPEN) ws.send(frame(RESIZE, JSON.stringify({ Width: width, Height: height })));
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    close: () => ws.close(),
    terminate: () => ws.terminate(),
  };
}

/** Connect to an exec or attach URL the runtime returned. */
export function openStreamSession(
  url: string,
  options: StreamSessionOptions,
  protocols: readonly string[] = EXEC_PROTOCOLS,
): Promise<StreamSession> {
  return openStreaming(url, options, {
    spdy: (checked) =>
      openSpdyExecChannels(checked, {
        operation: options.operation,
        protocols: SPDY_EXEC_PROTOCOLS,
        stdin: options.stdin,
        stdout: options.stdout ?? true,
        stderr: options.stderr ?? !options.tty,
        tty: options.tty ?? false,
        signal: options.signal,
        handshakeTimeout: options.handshakeTimeout,
      }),
    overSpdy: (channels) => new StreamSession(channels, options),
    protocols,
    overWebSocket: (ws) => new StreamSession(websocketChannels(ws, options.operation), options),
  });
}
