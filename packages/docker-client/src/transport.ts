// Requests straight on undici's dispatcher, without the Readable machinery of `request()`: small bodies
// are gathered into one buffer, streamed bodies become an async iterable of the received chunks with
// backpressure (the connection is paused while the consumer lags). This is what keeps inspect calls and
// log reads cheap in CPU.
import type { Dispatcher } from "undici";

export interface RawRequest {
  path: string;
  method: string;
  headers: Record<string, string>;
  body?: Dispatcher.DispatchOptions["body"];
  /** ms until headers arrive */
  headersTimeout: number;
  /** ms of silence allowed between body chunks (0 = none) */
  bodyTimeout: number;
  signal?: AbortSignal | undefined;
}

export type ResponseHeaders = Record<string, string | string[] | undefined>;

export interface BufferedResponse {
  status: number;
  headers: ResponseHeaders;
  body: Buffer;
}

/**
 * The signal, watched from the dispatch on: a request still queued for a connection (every one of the
 * pool's is busy) has no controller yet, and must fail at once on abort rather than when it reaches a
 * socket, which may be never. `queued` is told then; the controller, once there, is aborted at once.
 */
function watchAbort(
  signal: AbortSignal | undefined,
  queued: (reason: unknown) => void,
): { start(controller: Dispatcher.DispatchController): void; stop(): void } {
  if (!signal) return { start() {}, stop() {} };
  let controller: Dispatcher.DispatchController | undefined;
  const onAbort = () => (controller ? controller.abort(signal.reason) : queued(signal.reason));
  signal.addEventListener("abort", onAbort, { once: true });
  return {
    start(c) {
      controller = c;
      if (signal.aborted) c.abort(signal.reason);
    },
    stop: () => signal.removeEventListener("abort", onAbort),
  };
}

function dispatchOptions(req: RawRequest): Dispatcher.DispatchOptions {
  return {
    path: req.path,
    method: req.method as Dispatcher.HttpMethod,
    headers: req.headers,
    body: req.body ?? null,
    headersTimeout: req.headersTimeout,
    bodyTimeout: req.bodyTimeout,
  };
}

/** A request whose whole response body is gathered into one buffer. */
export function requestBuffered(dispatcher: Dispatcher, req: RawRequest): Promise<BufferedResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let status = 0;
    let headers: ResponseHeaders = {};
    if (req.signal?.aborted) return reject(req.signal.reason);
    const watch = watchAbort(req.signal, reject);
    const unwatch = watch.stop;
    dispatcher.dispatch(dispatchOptions(req), {
      onRequestStart(controller) {
        watch.start(controller);
      },
      onResponseStart(_controller, statusCode, responseHeaders) {
        status = statusCode;
        headers = responseHeaders as ResponseHeaders;
      },
      onResponseData(_controller, chunk) {
        chunks.push(chunk);
      },
      onResponseEnd() {
        unwatch();
        resolve({
          status,
          headers,
          body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
        });
      },
      onResponseError(_controller, err) {
        unwatch();
        reject(err);
      },
    });
  });
}

/** A streamed response: status and headers first, then the body as an async iterable of chunks. */
export interface StreamedResponse {
  status: number;
  headers: ResponseHeaders;
  body: ChunkStream;
}

export interface ChunkStream extends AsyncIterable<Buffer> {
  /** Stop reading and close the connection. */
  destroy(): void;
}

const HIGH_WATER = 16;

export function requestStreamed(dispatcher: Dispatcher, req: RawRequest): Promise<StreamedResponse> {
  return new Promise((resolve, reject) => {
    const queue: Buffer[] = [];
    let ended = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    let ctl: Dispatcher.DispatchController | undefined;
    let started = false;
    if (req.signal?.aborted) return reject(req.signal.reason);
    const watch = watchAbort(req.signal, reject);
    const unwatch = watch.stop;
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
    dispatcher.dispatch(dispatchOptions(req), {
      onRequestStart(controller) {
        ctl = controller;
        watch.start(controller);
      },
      onResponseStart(_controller, statusCode, headers) {
        started = true;
        resolve({ status: statusCode, headers: headers as ResponseHeaders, body });
      },
      onResponseData(controller, chunk) {
        queue.push(chunk);
        if (queue.length >= HIGH_WATER) controller.pause();
        notify();
      },
      onResponseEnd() {
        unwatch();
        ended = true;
        notify();
      },
      onResponseError(_controller, err) {
        unwatch();
        if (!started) reject(err);
        else if (!ended) failure = err;
        notify();
      },
    });
  });
}
