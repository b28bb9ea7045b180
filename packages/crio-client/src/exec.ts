// Exec and attach over the CRI streaming URL: the channel WebSocket protocol (v5 when the server offers it,
// else v4). Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (a metav1.Status as JSON), 4 resize.
//
// Closing stdin: v4 has no way to say "stdin ended" short of closing the whole socket, which also ends
// stdout and stderr. v5 (Kubernetes 1.30's streaming server) adds a close frame [255, 0]. containerd
// 1.6's stream server offers only v4 (and older), so there ending `stdin` sends nothing: the command must
// end by itself (read a known amount, a sentinel line...). `StreamSession.stdinClosable` tells which.
import { PassThrough, type Readable, Writable } from "node:stream";
import {
  AbortedError,
  type BerthError,
  DaemonError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from "@berth/runtime-core";
import type WebSocket from "ws";
import { CLOSE_CHANNEL, frame, messageBuffer, openChannelSocket } from "./channel.js";

export const STREAM_PROTOCOL_V5 = "v5.channel.k8s.io";
export const STREAM_PROTOCOL_V4 = "v4.channel.k8s.io";
/** What exec and attach offer, best first. */
export const EXEC_PROTOCOLS = [STREAM_PROTOCOL_V5, STREAM_PROTOCOL_V4] as const;

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;

/** The metav1.Status the server writes on the error channel. */
export interface StreamStatus {
  status?: "Success" | "Failure" | (string & {});
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes?: Array<{ reason?: string; message?: string; field?: string }> };
}

export interface StreamExit {
  /** The command's exit code (attach: 0 unless the runtime reported otherwise). */
  exitCode: number;
  status: StreamStatus;
}

export interface StreamSessionOptions {
  operation: string;
  stdin: boolean;
  signal?: AbortSignal | undefined;
  /** Milliseconds the whole session may last; then it is closed with a TimeoutError. */
  timeout?: number | undefined;
  handshakeTimeout?: number | undefined;
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

/** A running exec or attach: stream stdin in, read stdout and stderr, await `exit`. */
export class StreamSession {
  /** The negotiated subprotocol. */
  readonly protocol: string;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Present when the session was opened with stdin. Ending it closes stdin only if `stdinClosable`. */
  readonly stdin: Writable | undefined;
  /** Whether ending `stdin` reaches the command (v5) or is not expressible (v4). */
  readonly stdinClosable: boolean;
  /** Settles when the server closes the stream: the exit code, or a typed error. */
  readonly exit: Promise<StreamExit>;
  readonly #ws: WebSocket;

  constructor(ws: WebSocket, options: StreamSessionOptions) {
    const { operation, signal } = options;
    this.#ws = ws;
    this.protocol = ws.protocol;
    this.stdinClosable = ws.protocol === STREAM_PROTOCOL_V5;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.stdout = stdout;
    this.stderr = stderr;
    // Pause the socket while a reader lags, so a chatty command cannot fill memory.
    const backpressure = (s: PassThrough) => s.on("drain", () => ws.resume());
    backpressure(stdout);
    backpressure(stderr);
    const statusChunks: Buffer[] = [];
    let failure: BerthError | undefined;
    let timer: NodeJS.Timeout | undefined;

    ws.on("message", (data) => {
      const buf = messageBuffer(data);
      if (buf.length === 0) return;
      const payload = buf.subarray(1);
      switch (buf[0]) {
        case STDOUT:
          if (payload.length && !stdout.write(payload)) ws.pause();
          break;
        case STDERR:
          if (payload.length && !stderr.write(payload)) ws.pause();
          break;
        case ERROR:
          statusChunks.push(payload);
          break;
        default:
          break;
      }
    });

    const fail = (err: BerthError) => {
      failure ??= err;
      ws.terminate();
    };
    const onAbort = () =>
      fail(new AbortedError(`${operation}: aborted`, { operation, backend: "cri", cause: signal?.reason }));
    signal?.addEventListener("abort", onAbort, { once: true });
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
    ws.on("error", (err) => {
      failure ??= new UnavailableError(`${operation}: stream connection failed: ${err.message}`, {
        operation,
        backend: "cri",
        cause: err,
      });
    });

    this.exit = new Promise<StreamExit>((resolve, reject) => {
      ws.once("close", (code, reason) => {
        signal?.removeEventListener("abort", onAbort);
        if (timer) clearTimeout(timer);
        stdout.end();
        stderr.end();
        if (failure) return reject(failure);
        const text = Buffer.concat(statusChunks).toString("utf8").trim();
        if (text) {
          let status: StreamStatus;
          try {
            status = JSON.parse(text) as StreamStatus;
          } catch (cause) {
            return reject(
              new ProtocolError(`${operation}: error channel is not a JSON Status: ${text.slice(0, 200)}`, {
                operation,
                backend: "cri",
                cause,
              }),
            );
          }
          try {
            return resolve(exitFromStatus(status, operation));
          } catch (err) {
            return reject(err);
          }
        }
        // The server always writes a Status before a clean close; none means the connection dropped.
        reject(
          new UnavailableError(
            `${operation}: stream closed without an exit status (close code ${code}${reason.length ? `, ${reason}` : ""})`,
            { operation, backend: "cri" },
          ),
        );
      });
    });
    // Callers who only read output still get errors through `exit`; never an unhandled rejection here.
    this.exit.catch(() => {});

    if (options.stdin) {
      this.stdin = new Writable({
        write: (chunk: Buffer, _enc, cb) => {
          if (ws.readyState !== ws.OPEN)
            return cb(new UnavailableError(`${operation}: stream closed`, { operation }));
          ws.send(frame(STDIN, chunk), cb);
        },
        final: (cb) => {
          if (this.stdinClosable && ws.readyState === ws.OPEN)
            ws.send(frame(CLOSE_CHANNEL, Uint8Array.of(STDIN)), cb);
          else cb();
        },
      });
      // Writes after the socket closed fail through `exit`; keep them from becoming unhandled errors.
      this.stdin.on("error", () => {});
    }
  }

  /** Tell a TTY session its new size. */
  resize(width: number, height: number): void {
    if (this.#ws.readyState === this.#ws.OPEN) {
      this.#ws.send(frame(RESIZE, JSON.stringify({ Width: width, Height: height })));
    }
  }

  /** Close the connection now; the command may keep running on the runtime if it ignores a hang-up. */
  close(): void {
    this.#ws.close();
  }

  /**
   * Feed `input` to stdin (then end it, see `stdinClosable`), collect all output and the exit code.
   * Output is held in memory: for large outputs read `stdout`/`stderr` as streams instead.
   */
  async output(
    input?: string | Uint8Array | AsyncIterable<Uint8Array>,
  ): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }> {
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
        })().catch(() => this.#ws.terminate());
      }
    }
    const [exit, stdout, stderr] = await Promise.all([this.exit, out, err]);
    return { stdout, stderr, exitCode: exit.exitCode };
  }
}

/** Connect to an exec or attach URL the runtime returned. */
export function openStreamSession(
  url: string,
  options: StreamSessionOptions,
  protocols: readonly string[] = EXEC_PROTOCOLS,
): Promise<StreamSession> {
  return openChannelSocket(url, protocols, options, (ws) => new StreamSession(ws, options));
}
