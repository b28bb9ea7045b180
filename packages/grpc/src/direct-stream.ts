// Bidirectional gRPC streams straight over node:http2, for the hot path of a client that streams bulk
// data (containerd's Content.Write: a pull writes every byte of every layer through it).
//
// grpc-js frames each outgoing message by allocating a new buffer and copying the message into it; for
// megabyte messages that is a copy of every byte plus a megabyte of garbage per message, which costs a
// full garbage collection every few dozen megabytes. Here the 5-byte gRPC prefix and the caller's bytes
// are written to the HTTP/2 stream as two writes, and node:http2 sends them from where they are: no copy.
// Only for channels without TLS (a local daemon's unix socket or plain TCP), and only for bidi methods.

import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from "node:http2";
import { connect as netConnect } from "node:net";
import { AbortedError, type BerthError, ProtocolError, type UnavailableError } from "@berth/runtime-core";
import { errorFromGrpcStatus } from "@berth/runtime-core/internal";
import type { GrpcCallOptions, ServerStream } from "./types.js";
import { unavailableError } from "./unavailable.js";

/** gRPC status codes used here. */
const DEADLINE_EXCEEDED = 4;

/** How many decoded answers may wait for the consumer before the stream is paused. */
const READ_AHEAD = 32;

export interface DirectStreamsOptions {
  /** A unix socket path, or host:port for plain TCP. */
  socketPath?: string;
  authority?: string;
  backend?: string | undefined;
  /** The channel's name for the daemon, in messages. */
  address: string;
  maxMessageBytes: number;
}

interface Session {
  session: ClientHttp2Session;
  /** Why the connection failed or went away, once it has. */
  failure?: Error;
  active: number;
}

/** Why a call ended: the answer the iterator gives. */
type Ending = { error: BerthError } | { error?: undefined };

/** One HTTP/2 connection (made when first needed, again after it broke) for a channel's direct streams. */
export class DirectStreams {
  readonly #options: DirectStreamsOptions;
  #current: Session | undefined;
  #closed = false;

  constructor(options: DirectStreamsOptions) {
    this.#options = options;
  }

  /** Close the connection now (its socket too, not after a goodbye): calls in flight fail. */
  close(): void {
    this.#closed = true;
    this.#current?.session.destroy();
    this.#current = undefined;
  }

  #session(): Session {
    const cur = this.#current;
    if (cur && !cur.failure && !cur.session.closed && !cur.session.destroyed) return cur;
    const { socketPath, authority } = this.#options;
    const session = socketPath
      ? connect("http://localhost", { createConnection: () => netConnect(socketPath) })
      : connect(`http://${authority}`);
    const s: Session = { session, active: 0 };
    session.on("error", (err) => {
      s.failure ??= err;
    });
    session.on("goaway", () => {
      s.failure ??= new Error("the daemon closed the connection (GOAWAY)");
    });
    session.on("close", () => {
      s.failure ??= new Error("connection closed");
      if (this.#current === s) this.#current = undefined;
    });
    // An idle connection keeps no process alive; one with a call in flight does (see #hold).
    session.unref();
    this.#current = s;
    return s;
  }

  #unavailable(operation: string, why: string, cause: unknown): UnavailableError {
    return unavailableError(this.#options.address, operation, why, this.#options.backend, cause);
  }

  /**
   * A bidi call: `requests` are written as they come (each a message to `serialize`, or already encoded
   * bytes), answers are decoded and yielded in order. Started on first iteration; `cancel()` ends it.
   */
  bidi<T>(
    path: string,
    operation: string,
    headers: Record<string, string>,
    requests: AsyncIterable<unknown> | Iterable<unknown>,
    serialize: (value: unknown) => Buffer,
    deserialize: (bytes: Buffer) => T,
    options: GrpcCallOptions | undefined,
  ): ServerStream<T> {
    const self = this;
    const backend = this.#options.backend;
    const max = this.#options.maxMessageBytes;
    const details = { operation, ...(backend ? { backend } : {}) };
    let cancelled = false;
    let stream: ClientHttp2Stream | undefined;
    return {
      cancel() {
        cancelled = true;
        if (stream && !stream.closed) stream.close(constants.NGHTTP2_CANCEL);
      },
      async *[Symbol.asyncIterator]() {
        const signal = options?.signal;
        if (signal?.aborted) {
          throw new AbortedError(`${operation}: aborted`, { ...details, cause: signal.reason });
        }
        if (cancelled) return;
        if (self.#closed) throw self.#unavailable(operation, "the channel is closed", undefined);
        const s = self.#session();
        const h: Record<string, string> = {
          ...headers,
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
        };
        if (options?.timeout !== undefined) h["grpc-timeout"] = `${Math.max(1, Math.ceil(options.timeout))}m`;
        let st: ClientHttp2Stream;
        try {
          st = s.session.request(h, { endStream: false });
        } catch (err) {
          throw self.#unavailable(operation, (err as Error).message, err);
        }
        stream = st;
        if (s.active++ === 0) s.session.ref();

        // Answers, and how the call ended, handed from the stream's events to this iterator.
        const answers: T[] = [];
        let ending: Ending | undefined;
        let wake: (() => void) | undefined;
        const notify = () => {
          const w = wake;
          wake = undefined;
          w?.();
        };
        const end = (e: Ending) => {
          ending ??= e;
          if (!st.closed) st.close(e.error ? constants.NGHTTP2_CANCEL : constants.NGHTTP2_NO_ERROR);
          notify();
        };
        const statusEnding = (fields: Record<string, unknown>): Ending | undefined => {
          const raw = fields["grpc-status"];
          if (raw === undefined) return undefined;
          const code = Number(raw);
          if (code === 0) return {};
          let message = String(fields["grpc-message"] ?? "");
          try {
            message = decodeURIComponent(message);
          } catch {}
          return { error: errorFromGrpcStatus(code, message, details) };
        };

        // The length-prefixed messages of the answer, parsed across DATA frames.
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        const take = (n: number): Buffer => {
          if (n === 0) return Buffer.alloc(0);
          const first = pending[0] as Buffer;
          if (first.byteLength >= n) {
            const out = first.subarray(0, n);
            if (first.byteLength === n) pending.shift();
            else pending[0] = first.subarray(n);
            pendingBytes -= n;
            return out;
          }
          const all = Buffer.concat(pending, pendingBytes);
          pending = all.byteLength > n ? [all.subarray(n)] : [];
          pendingBytes -= n;
          return all.subarray(0, n);
        };
        st.on("data", (chunk: Buffer) => {
          if (ending) return;
          pending.push(chunk);
          pendingBytes += chunk.byteLength;
          while (pendingBytes >= 5) {
            const head = pending[0] && pending[0].byteLength >= 5 ? pending[0] : Buffer.concat(pending);
            const compressed = head[0] as number;
            const length = head.readUInt32BE(1);
            if (compressed !== 0) {
              return end({ error: new ProtocolError(`${operation}: a compressed answer`, details) });
            }
            if (length > max) {
              return end({
                error: new ProtocolError(`${operation}: an answer of ${length} bytes, over ${max}`, details),
              });
            }
            if (pendingBytes < 5 + length) break;
            take(5);
            const body = take(length);
            try {
              answers.push(deserialize(body));
            } catch (err) {
              return end({
                error: new ProtocolError(`${operation}: an answer that does not decode: ${err}`, {
                  ...details,
                  cause: err,
                }),
              });
            }
          }
          if (answers.length >= READ_AHEAD) st.pause();
          notify();
        });
        st.on("response", (fields) => {
          const status = fields[":status"];
          if (status !== 200) {
            return end({ error: new ProtocolError(`${operation}: HTTP status ${status}`, details) });
          }
          // A trailers-only answer: the status comes with the headers.
          const e = statusEnding(fields);
          if (e) end(e);
        });
        st.on("trailers", (fields) => {
          const e = statusEnding(fields) ?? {
            error: new ProtocolError(`${operation}: the answer ended without a gRPC status`, details),
          };
          if (!e.error && pendingBytes > 0) {
            end({ error: new ProtocolError(`${operation}: the answer ended inside a message`, details) });
          } else end(e);
        });
        st.on("error", () => {});
        st.on("close", () => {
          if (!ending) {
            // A connection that broke closes its streams with CANCEL, often before the session tells why.
            const gone =
              s.failure !== undefined ||
              s.session.destroyed ||
              s.session.closed ||
              st.rstCode === constants.NGHTTP2_CANCEL ||
              st.rstCode === constants.NGHTTP2_REFUSED_STREAM;
            const why = s.failure?.message ?? `connection dropped (HTTP/2 stream reset, code ${st.rstCode})`;
            if (cancelled) end({});
            else if (gone) end({ error: self.#unavailable(operation, why, s.failure) });
            else
              end({
                error: new ProtocolError(`${operation}: stream reset (HTTP/2 code ${st.rstCode})`, details),
              });
          }
          if (--s.active === 0 && !s.session.destroyed) s.session.unref();
          notify();
        });

        const onAbort = () => {
          end({ error: new AbortedError(`${operation}: aborted`, { ...details, cause: signal?.reason }) });
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        const timer =
          options?.timeout === undefined
            ? undefined
            : setTimeout(
                () =>
                  end({
                    error: errorFromGrpcStatus(
                      DEADLINE_EXCEEDED,
                      `deadline of ${options.timeout} ms exceeded`,
                      details,
                    ),
                  }),
                options.timeout,
              );

        // Requests go out as they come, as two writes each (the prefix, then the bytes as they are).
        const pump = async () => {
          for await (const request of requests) {
            if (ending || st.closed) return;
            const bytes = request instanceof Uint8Array ? request : serialize(request);
            const prefix = Buffer.allocUnsafe(5);
            prefix[0] = 0;
            prefix.writeUInt32BE(bytes.byteLength, 1);
            st.write(prefix);
            if (!st.write(bytes)) {
              await new Promise<void>((resolve) => {
                const done = () => {
                  st.off("drain", done);
                  st.off("close", done);
                  resolve();
                };
                st.on("drain", done);
                st.on("close", done);
              });
            }
          }
          if (!ending && !st.closed) st.end();
        };
        pump().catch((err) => {
          end({
            error: new ProtocolError(`${operation}: the requests failed: ${(err as Error)?.message ?? err}`, {
              ...details,
              cause: err,
            }),
          });
        });

        try {
          for (;;) {
            if (answers.length > 0) {
              const next = answers.shift() as T;
              if (answers.length < READ_AHEAD / 2 && st.isPaused()) st.resume();
              yield next;
              continue;
            }
            if (ending) {
              if (ending.error) {
                if (cancelled && !signal?.aborted) return;
                throw ending.error;
              }
              return;
            }
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        } finally {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          if (!ending) {
            cancelled = true;
            end({});
          }
        }
      },
    };
  }
}
