// The one way a request reaches the daemon: send() dispatches it straight on undici's dispatcher (without
// the Readable machinery of `request()`), applies the caller's signal and the deadline in one place
// (Cancel), checks the status by one rule, and hands back the answer the way its reader takes it: a body
// gathered into one buffer, an async iterable of the received chunks with backpressure (the connection is
// paused while the consumer lags), or an upgraded socket. This is what keeps inspect calls and log reads
// cheap in CPU. The daemon is not trusted: a buffered answer has a total deadline and a size cap, a
// streamed one a deadline for its headers and an optional bound on silence, an error's body is read only
// to MAX_ERROR_BYTES.
import type { Duplex } from "node:stream";
import type { Dispatcher } from "undici";
import type { ResponseHeaders } from "./operation.js";

export interface RawRequest {
  path: string;
  method: string;
  headers: Record<string, string>;
  body?: Dispatcher.DispatchOptions["body"];
  /**
   * ms for the whole exchange of a buffered request, or until the headers of a streamed or upgraded one
   * (0 = none). It runs from the dispatch, waiting for a free connection included; with a request body
   * that is a stream (an upload), from the end of that body, since an upload takes as long as it takes.
   */
  timeout: number;
  /** Streamed: ms the daemon may stay silent while its body is read (0 = none). */
  idleTimeout?: number;
  /** Aborting fails the exchange and drops its connection, an upgraded one included. */
  signal?: AbortSignal | undefined;
}

/** A failure of the exchange the client reports as a typed error: told apart by `code`. */
export class ExchangeError extends Error {
  constructor(
    readonly code: "BERTH_DEADLINE" | "BERTH_IDLE" | "BERTH_TOO_LARGE",
    message: string,
  ) {
    super(message);
    this.name = "ExchangeError";
  }
}

/** A status that does not answer the call, with the start of its body (what explains it). */
export class StatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: Buffer,
  ) {
    super(`HTTP ${status}`);
    this.name = "StatusError";
  }
}

/** The body of an answer that is not a success is read this far: enough for any daemon's message. */
export const MAX_ERROR_BYTES = 64 * 1024;

/** How much of a buffered answer is read. */
interface BodyLimits {
  /** Most bytes of a 2xx body; past it the exchange fails (ExchangeError BERTH_TOO_LARGE). */
  maxBytes: number;
  /** The option that sets `maxBytes`, for the message. */
  name: string;
}

/** An upgrade's body only ever explains why there was none. */
const UPGRADE_LIMITS: BodyLimits = { maxBytes: MAX_ERROR_BYTES, name: "the error cap" };

/**
 * The caller's signal and the deadline, watched from the dispatch on: the one place either ends an
 * exchange. A request still queued for a connection (every one of the pool's is busy) has no controller
 * yet, and must fail at once rather than when it reaches a socket, which may be never: `fail` is told
 * then, and the controller, once there, is aborted at once. Aborting a controller drops the connection;
 * once a connection is upgraded, the signal destroys the socket instead.
 */
class Cancel {
  #controller: Dispatcher.DispatchController | undefined;
  #socket: Duplex | undefined;
  #reason: Error | undefined;
  #cancelled = false;
  #stopped = false;
  /** The deadline no longer applies (it may still be armed late by an upload's end: it must not be). */
  #disarmed = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #timeout: number;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: (() => void) | undefined;

  constructor(
    req: RawRequest,
    readonly fail: (reason: unknown) => void,
  ) {
    const signal = req.signal;
    this.#timeout = req.timeout;
    this.#signal = signal;
    if (signal) {
      this.#onAbort = () => this.cancel(signal.reason as Error);
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
    const body = req.body as { once?: (event: string, fn: () => void) => unknown } | null | undefined;
    // An upload's time is its own; the deadline starts once it is sent (or the answer starts).
    if (typeof body?.once === "function") body.once("end", () => this.arm());
    else this.arm();
  }

  /** Start the deadline, unless it runs already. */
  arm(): void {
    const ms = this.#timeout;
    if (ms <= 0 || this.#timer || this.#stopped || this.#disarmed) return;
    this.#timer = setTimeout(
      () => this.cancel(new ExchangeError("BERTH_DEADLINE", `gave no complete answer within ${ms} ms`)),
      ms,
    );
    this.#timer.unref();
  }

  /** The deadline no longer applies (a stream's headers are in). */
  disarm(): void {
    this.#disarmed = true;
    clearTimeout(this.#timer);
  }

  start(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#reason) controller.abort(this.#reason);
  }

  /** The upgraded connection is the caller's now: no deadline, and the signal ends it until it closes. */
  hold(socket: Duplex): void {
    this.disarm();
    this.#socket = socket;
    if (this.#cancelled) socket.destroy(this.#reason instanceof Error ? this.#reason : undefined);
    else socket.once("close", () => this.stop());
  }

  cancel(reason: Error): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#reason = reason;
    this.stop();
    if (this.#socket) this.#socket.destroy(reason instanceof Error ? reason : undefined);
    else if (this.#controller) this.#controller.abort(reason);
    else this.fail(reason);
  }

  /** Neither the signal nor the deadline applies any more. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#onAbort) this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}

/** How send() receives an answer: its body gathered, streamed as chunks, or the upgraded socket. */
export type Receive = "buffer" | "stream" | "upgrade";

/** What send() resolves to, by how the answer is received. */
export interface Received {
  buffer: BufferedResponse;
  stream: StreamedResponse;
  upgrade: UpgradedResponse;
}

/** How send() takes an answer, and which statuses answer the call. */
export interface Receiving<R extends Receive> extends BodyLimits {
  receive: R;
  /** A 304 answers the call too (a start or stop of what already is). */
  notModified?: boolean;
}

/** A buffered answer: status, headers and the whole body. */
export interface BufferedResponse {
  status: number;
  headers: ResponseHeaders;
  body: Buffer;
}

/** A streamed answer: status and headers first, then the body as an async iterable of chunks. */
export interface StreamedResponse {
  status: number;
  headers: ResponseHeaders;
  body: ChunkStream;
}

/** The chunks of a streamed body, as they arrive. */
export interface ChunkStream extends AsyncIterable<Buffer> {
  /** Stop reading and close the connection. */
  destroy(): void;
}

/** An upgraded connection (101): the socket is the caller's. */
export interface UpgradedResponse {
  status: 101;
  headers: ResponseHeaders;
  socket: Duplex;
}

/** Whether a status carries a body worth the big cap (else it only explains an error). */
const success = (status: number) => status >= 200 && status < 300;

/** The one rule for statuses: 2xx answers a call, 101 an upgrade, 304 where the API defines it. */
function answers(how: Receiving<Receive>, status: number): boolean {
  if (how.receive === "upgrade") return status === 101;
  return success(status) || (status === 304 && how.notModified === true);
}

/**
 * One exchange with the daemon, for every kind of answer: the caller's signal and the deadline applied
 * (Cancel), a status that does not answer the call thrown as a StatusError with the start of its body,
 * and the answer handed back the way `how.receive` says.
 */
export async function send<R extends Receive>(
  dispatcher: Dispatcher,
  req: RawRequest,
  how: Receiving<R>,
): Promise<Received[R]> {
  if (how.receive === "stream") {
    const res = await streamed(dispatcher, req);
    if (!answers(how, res.status)) throw new StatusError(res.status, await errorBody(res.body));
    return res as Received[R];
  }
  const upgrade = how.receive === "upgrade";
  const res = await exchange(dispatcher, req, upgrade ? UPGRADE_LIMITS : how, upgrade);
  if (!answers(how, res.status)) throw new StatusError(res.status, (res as BufferedResponse).body);
  return res as Received[R];
}

function dispatchOptions(req: RawRequest, upgrade: boolean): Dispatcher.DispatchOptions {
  return {
    path: req.path,
    method: req.method as Dispatcher.HttpMethod,
    headers: req.headers,
    body: req.body ?? null,
    // The deadline is Cancel's; undici's own idle timer bounds a stream's silence (it does not run
    // while the connection is paused for a slow reader).
    headersTimeout: 0,
    bodyTimeout: req.idleTimeout ?? 0,
    ...(upgrade ? { upgrade: "tcp" } : {}),
  };
}

/** The handler callbacks that gather a capped body; `done` gets it once complete (or cut at the cap). */
function gather(
  cancel: Cancel,
  limits: BodyLimits,
  done: (res: BufferedResponse) => void,
): Pick<Dispatcher.DispatchHandler, "onResponseStart" | "onResponseData" | "onResponseEnd"> {
  const chunks: Buffer[] = [];
  let size = 0;
  let cap = limits.maxBytes;
  let status = 0;
  let headers: ResponseHeaders = {};
  const body = () => (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
  return {
    onResponseStart(_controller, statusCode, responseHeaders) {
      status = statusCode;
      headers = responseHeaders as ResponseHeaders;
      if (!success(statusCode)) cap = MAX_ERROR_BYTES;
      cancel.arm(); // the answer started before the upload ended
    },
    onResponseData(controller, chunk) {
      size += chunk.length;
      if (size <= cap) {
        chunks.push(chunk);
        return;
      }
      if (success(status)) {
        cancel.stop();
        controller.abort(
          new ExchangeError("BERTH_TOO_LARGE", `the answer is larger than ${limits.name} (${cap} bytes)`),
        );
        return;
      }
      // An error's body: its start says what went wrong; the rest is not read, nor is the connection kept.
      chunks.push(chunk.subarray(0, chunk.length - (size - cap)));
      cancel.stop();
      done({ status, headers, body: body() });
      controller.abort(new ExchangeError("BERTH_TOO_LARGE", "error body cut"));
    },
    onResponseEnd() {
      cancel.stop();
      done({ status, headers, body: body() });
    },
  };
}

/** A buffered exchange; with `upgrade`, a 101 answer's socket is handed back instead. */
function exchange(
  dispatcher: Dispatcher,
  req: RawRequest,
  limits: BodyLimits,
  upgrade: boolean,
): Promise<BufferedResponse | UpgradedResponse> {
  return new Promise((resolve, reject) => {
    if (req.signal?.aborted) return reject(req.signal.reason);
    const cancel = new Cancel(req, reject);
    dispatcher.dispatch(dispatchOptions(req, upgrade), {
      onRequestStart(controller) {
        cancel.start(controller);
      },
      ...(upgrade
        ? {
            onRequestUpgrade(_controller, _status, headers, socket) {
              cancel.hold(socket as Duplex);
              resolve({ status: 101, headers: headers as ResponseHeaders, socket: socket as Duplex });
            },
          }
        : {}),
      ...gather(cancel, limits, resolve),
      onResponseError(_controller, err) {
        cancel.stop();
        reject(err);
      },
    });
  });
}

const HIGH_WATER = 16;

/** A streamed exchange: resolved at the headers, the deadline then disarmed. */
function streamed(dispatcher: Dispatcher, req: RawRequest): Promise<StreamedResponse> {
  return new Promise((resolve, reject) => {
    const queue: Buffer[] = [];
    let ended = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    let ctl: Dispatcher.DispatchController | undefined;
    let started = false;
    if (req.signal?.aborted) return reject(req.signal.reason);
    const cancel = new Cancel(req, reject);
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const body: ChunkStream = {
      destroy() {
        if (!ended && !failure) ctl?.abort(new Error("stream closed by the client"));
        ended = true;
        notify();
      },
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            const chunk = queue.shift();
            if (chunk) {
              if (ctl?.paused && queue.length < HIGH_WATER / 2) ctl.resume();
              yield chunk;
              continue;
            }
            if (failure) throw failure;
            if (ended) return;
            await new Promise<void>((r) => {
              wake = r;
            });
          }
        } finally {
          body.destroy();
        }
      },
    };
    dispatcher.dispatch(dispatchOptions(req, false), {
      onRequestStart(controller) {
        ctl = controller;
        cancel.start(controller);
      },
      onResponseStart(_controller, statusCode, headers) {
        started = true;
        cancel.disarm();
        resolve({ status: statusCode, headers: headers as ResponseHeaders, body });
      },
      onResponseData(controller, chunk) {
        queue.push(chunk);
        if (queue.length >= HIGH_WATER) controller.pause();
        notify();
      },
      onResponseEnd() {
        cancel.stop();
        ended = true;
        notify();
      },
      onResponseError(_controller, err) {
        cancel.stop();
        if (!started) reject(err);
        else if (!ended) failure = err;
        notify();
      },
    });
  });
}

/** The start of an error's streamed body (what explains it); the rest is left unread, with the connection. */
async function errorBody(body: ChunkStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      parts.push(chunk);
      size += chunk.length;
      if (size >= MAX_ERROR_BYTES) break;
    }
  } catch {
    // the status says enough
  }
  return Buffer.concat(parts).subarray(0, MAX_ERROR_BYTES);
}

/**
 * A socket's chunks, failing once the daemon has sent nothing for `ms` while the reader waits for it
 * (time the reader spends elsewhere does not count). One coarse interval per stream, no timer per chunk.
 */
export async function* idleBounded(socket: Duplex, ms: number): AsyncGenerator<Uint8Array> {
  let waitingSince = 0;
  const check = setInterval(
    () => {
      if (waitingSince && Date.now() - waitingSince >= ms) {
        socket.destroy(new ExchangeError("BERTH_IDLE", `sent nothing for ${ms} ms`));
      }
    },
    Math.min(Math.max(ms / 4, 10), 1000),
  );
  check.unref();
  const it = socket[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  try {
    for (;;) {
      waitingSince = Date.now();
      const next = await it.next();
      waitingSince = 0;
      if (next.done) return;
      yield next.value;
    }
  } finally {
    clearInterval(check);
    await it.return?.();
  }
}
