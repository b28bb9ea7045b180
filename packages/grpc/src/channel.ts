// A gRPC connection to one daemon, and typed clients for its services built from ts-proto's generic
// definitions: unary calls as promises, server streams as async iterables, every call abortable.
import { once } from "node:events";
import { AbortedError, type BerthError, isBerthError, ProtocolError } from "@berth/runtime-core";
import { errorFromGrpcStatus } from "@berth/runtime-core/internal";
import * as grpc from "@grpc/grpc-js";
import { DirectStreams } from "./direct-stream.js";
import type {
  GrpcCallOptions,
  MessageType,
  MessageWriter,
  MethodDefinition,
  ServerStream,
  ServiceClient,
  ServiceDefinition,
} from "./types.js";
import { unavailableError } from "./unavailable.js";

/**
 * What grpc-js reports, in its own words, when it could not read the daemon's answer: a message that
 * does not decode, a length prefix past the receive limit, a compressed flag without an encoding, a
 * unary answer with no message or with two. It gives these INTERNAL, RESOURCE_EXHAUSTED or UNIMPLEMENTED,
 * statuses the daemon never sent: the answer broke the protocol (a ProtocolError); the daemon neither
 * reported a failure (DaemonError) nor lacks the method (UnsupportedError, which CRI's ensureV1 would
 * read as "no runtime.v1").
 */
const UNREADABLE_ANSWER = new Map<number, RegExp>([
  [
    grpc.status.INTERNAL,
    /^(Response message parsing error|Received compressed message|Failed to decompress)/,
  ],
  [grpc.status.RESOURCE_EXHAUSTED, /^Received message larger than max/],
  [grpc.status.UNIMPLEMENTED, /^(No message received|Too many responses received)$/],
]);

/** containerd's own client raises both limits to 16 MiB; CRI's kubelet client does the same. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** A writer that grew past this for one message is dropped rather than kept, with its buffer, for the next. */
const REUSED_WRITER_MAX_BYTES = 64 * 1024;

/** How a GrpcChannel connects. Only `address` is required. */
export interface GrpcChannelOptions {
  /** Daemon address: a socket path, unix:///path, unix:path, or host:port. */
  address: string;
  /** Metadata sent with every call, e.g. containerd's namespace; a function is asked each call. */
  metadata?: Record<string, string> | (() => Record<string, string>);
  /** Largest message sent or received (default 16 MiB). */
  maxMessageBytes?: number;
  /** Backend name used in errors ("containerd", "cri"). */
  backend?: string;
  /** TLS or other grpc-js credentials (default: insecure, as a local unix socket needs). */
  credentials?: grpc.ChannelCredentials;
  /** Extra grpc-js channel options, passed through. */
  channelOptions?: grpc.ChannelOptions;
  /**
   * Run bidirectional-streaming methods over node:http2 directly instead of grpc-js, which copies every
   * outgoing message once more to frame it (see direct-stream.ts): for bulk uploads such as containerd's
   * Content.Write. Only without `credentials` (a unix socket or plain TCP); ignored otherwise.
   */
  directStreams?: boolean;
}

/** How the clients of one service behave: their metadata, default deadline and error refinement. */
export interface ServiceOptions {
  /** Replaces the channel's default metadata for this service (e.g. another containerd namespace). */
  metadata?: GrpcChannelOptions["metadata"];
  /**
   * Milliseconds until the deadline of a unary call (one request, one answer) that sets no `timeout` of
   * its own. Streams get none: they last as long as their caller reads. Default: none.
   */
  timeout?: number;
  /** Unary methods (by their key in the definition, `wait`) that never get the default deadline. */
  untimed?: readonly string[];
  /**
   * Refines the error a call fails with, after its gRPC status became a berth error (e.g. a CRI runtime's
   * UNKNOWN whose text says 401, made an UnauthorizedError). Not asked for AbortedErrors.
   */
  mapError?: (err: BerthError) => unknown;
}

/** Turn the address forms daemons document into one grpc-js understands. */
export function grpcTarget(address: string): string {
  if (address.startsWith("unix://")) {
    const path = address.slice("unix://".length);
    return `unix://${path.startsWith("/") ? path : `/${path}`}`;
  }
  if (address.startsWith("unix:")) return `unix://${address.slice(5)}`;
  if (address.startsWith("/")) return `unix://${address}`;
  if (address.startsWith("tcp://")) return address.slice("tcp://".length);
  return address;
}

interface Prepared {
  md: grpc.Metadata;
  co: grpc.CallOptions;
  error: BerthError | undefined;
  watch: (cancel: () => void) => () => void;
}

function toMetadata(values: Record<string, string> | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (values) for (const [k, v] of Object.entries(values)) md.set(k, v);
  return md;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * One gRPC connection to a daemon (containerd, a CRI runtime) with typed clients for ts-proto service
 * definitions. Failed calls reject with berth errors (a gRPC status mapped to NotFoundError,
 * UnavailableError, TimeoutError, ...); an aborted signal gives an AbortedError.
 */
export class GrpcChannel {
  /** The address as given in the options. */
  readonly address: string;
  readonly #metadata: GrpcChannelOptions["metadata"];
  readonly #backend: string | undefined;
  readonly #newClient: () => grpc.Client;
  readonly #unix: boolean;
  #client: grpc.Client;
  #closed = false;
  /** The protobuf writer requests are encoded with, reused (see #encode); undefined while one is in use. */
  #writer: MessageWriter | undefined;
  /** Bidi streams over node:http2 directly (GrpcChannelOptions.directStreams), else undefined. */
  readonly #direct: DirectStreams | undefined;

  constructor(options: GrpcChannelOptions) {
    const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.address = options.address;
    this.#metadata = options.metadata;
    this.#backend = options.backend;
    const target = grpcTarget(options.address);
    this.#unix = target.startsWith("unix:");
    this.#newClient = () =>
      new grpc.Client(target, options.credentials ?? grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": max,
        "grpc.max_send_message_length": max,
        // One connection per GrpcChannel, not shared through grpc-js's global pool: a fresh client
        // (see #live) must not inherit the old one's reconnect backoff.
        "grpc.use_local_subchannel_pool": 1,
        ...options.channelOptions,
      });
    this.#client = this.#newClient();
    if (options.directStreams && !options.credentials && !target.startsWith("dns:")) {
      const unixPath = this.#unix ? target.replace(/^unix:(\/\/)?/, "") : undefined;
      this.#direct = new DirectStreams({
        ...(unixPath ? { socketPath: unixPath } : { authority: target }),
        backend: this.#backend,
        address: this.address,
        maxMessageBytes: max,
      });
    }
  }

  /** The grpc-js client calls start on now (replaced after a failed reconnect, see #live). */
  get client(): grpc.Client {
    return this.#client;
  }

  /**
   * The client to start a call on. grpc-js keeps a channel whose connect failed in TRANSIENT_FAILURE for
   * its reconnect backoff (1 s, growing to 2 min while the daemon stays away) and fails every call at
   * once meanwhile, even after the daemon is back. A local daemon that was restarted should answer the
   * next call, so a unix-socket channel in that state is replaced by a fresh one, which connects at once
   * (a daemon still down then costs one refused connect per call, cheap on a unix socket).
   */
  #live(): grpc.Client {
    const current = this.#client;
    if (
      this.#unix &&
      !this.#closed &&
      current.getChannel().getConnectivityState(false) === grpc.connectivityState.TRANSIENT_FAILURE
    ) {
      this.#client = this.#newClient();
      current.close();
    }
    return this.#client;
  }

  /**
   * A typed client for one service of this channel: one method per RPC, with the metadata, default
   * deadline and error refinement of `options` (see ServiceOptions).
   */
  service<D extends ServiceDefinition>(definition: D, options: ServiceOptions = {}): ServiceClient<D> {
    const out: Record<string, unknown> = {};
    const md = options.metadata ?? this.#metadata;
    const untimed = new Set(options.untimed);
    const { mapError } = options;
    for (const [key, method] of Object.entries(definition.methods)) {
      const path = `/${definition.fullName}/${method.name}`;
      const operation = `${definition.name}.${method.name}`;
      const timeout = untimed.has(key) ? undefined : options.timeout;
      out[key] = this.#method(path, operation, method, md, { timeout, mapError });
    }
    return out as ServiceClient<D>;
  }

  /** Close the connection; calls in flight fail. */
  close(): void {
    this.#closed = true;
    this.#client.close();
    this.#direct?.close();
  }

  #method(
    path: string,
    operation: string,
    method: MethodDefinition,
    metadata: GrpcChannelOptions["metadata"],
    service: { timeout: number | undefined; mapError: ServiceOptions["mapError"] },
  ): unknown {
    // Fixed default metadata is built once per method and cloned per call (cheaper than rebuilding it).
    const base = typeof metadata === "function" ? undefined : toMetadata(metadata);
    const callMetadata = (options: GrpcCallOptions | undefined) =>
      this.#callMetadata(options, metadata, base);
    const { mapError } = service;
    const failure = (err: unknown, options: GrpcCallOptions | undefined): unknown => {
      const e = this.#error(err, operation, options);
      return mapError && !(e instanceof AbortedError) ? mapError(e) : e;
    };
    const prepare = (options: GrpcCallOptions | undefined) => this.#prepare(operation, options, callMetadata);
    const { requestType, responseType } = method;
    // A Uint8Array is a request its caller encoded (see Encoded): no message is ever one.
    const serialize = (value: unknown) =>
      value instanceof Uint8Array ? toBuffer(value) : this.#encode(requestType, value);
    const deserialize = (bytes: Buffer) => responseType.decode(bytes);
    if (!method.requestStream && !method.responseStream) {
      return this.#unary(path, operation, serialize, deserialize, callMetadata, failure, service.timeout);
    }
    if (!method.requestStream) {
      return (request?: unknown, options?: GrpcCallOptions) =>
        this.#serverStream(options, prepare(options), failure, (md, co) =>
          this.#live().makeServerStreamRequest(path, serialize, deserialize, request ?? {}, md, co),
        );
    }
    if (!method.responseStream) {
      return (requests: AsyncIterable<unknown> | Iterable<unknown>, options?: GrpcCallOptions) =>
        new Promise((resolve, reject) => {
          const { md, co, error, watch } = prepare(options);
          if (error) return reject(error);
          const call = this.#live().makeClientStreamRequest(
            path,
            serialize,
            deserialize,
            md,
            co,
            (err, res) => {
              unwatch();
              if (err) reject(failure(err, options));
              else resolve(res);
            },
          );
          const unwatch = watch(() => call.cancel());
          pump(requests, call).catch((err) => {
            call.cancel();
            reject(err);
          });
        });
    }
    const direct = this.#direct;
    if (direct) {
      return (requests: AsyncIterable<unknown> | Iterable<unknown>, options?: GrpcCallOptions) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(callMetadata(options).getMap())) headers[k] = String(v);
        const stream = direct.bidi(path, operation, headers, requests, serialize, deserialize, options);
        return mapError ? refineStream(stream, mapError) : stream;
      };
    }
    return (requests: AsyncIterable<unknown> | Iterable<unknown>, options?: GrpcCallOptions) =>
      this.#serverStream(options, prepare(options), failure, (md, co) => {
        const call = this.#live().makeBidiStreamRequest(path, serialize, deserialize, md, co);
        pump(requests, call).catch(() => call.cancel());
        return call;
      });
  }

  /** One call's metadata: the defaults (a copy of the prebuilt `base`, else built now), then the call's own. */
  #callMetadata(
    options: GrpcCallOptions | undefined,
    metadata: GrpcChannelOptions["metadata"],
    base: grpc.Metadata | undefined,
  ): grpc.Metadata {
    const md = base ? base.clone() : toMetadata(typeof metadata === "function" ? metadata() : metadata);
    if (options?.metadata) for (const [k, v] of Object.entries(options.metadata)) md.set(k, v);
    return md;
  }

  /**
   * Encode a request. ts-proto's encode makes a new writer, which allocates a fresh buffer, for every
   * message unless given one: one writer is reused instead (`finish()` resets it). It is taken while in
   * use, so an encode that throws drops it rather than leaving half a message for the next call.
   */
  #encode(type: MessageType<unknown>, value: unknown): Buffer {
    const message = type.fromPartial((value ?? {}) as never);
    const writer = this.#writer;
    this.#writer = undefined;
    const used = type.encode(message, writer);
    const bytes = used.finish();
    if (bytes.byteLength <= REUSED_WRITER_MAX_BYTES) this.#writer = used;
    return toBuffer(bytes);
  }

  #aborted(operation: string, signal: AbortSignal): AbortedError {
    return new AbortedError(`${operation}: aborted`, {
      operation,
      backend: this.#backend,
      cause: signal.reason,
    });
  }

  #prepare(
    operation: string,
    options: GrpcCallOptions | undefined,
    callMetadata: (options: GrpcCallOptions | undefined) => grpc.Metadata,
  ): Prepared {
    const md = callMetadata(options);
    const co: grpc.CallOptions = {};
    if (options?.timeout !== undefined) co.deadline = Date.now() + options.timeout;
    const signal = options?.signal;
    const error = signal?.aborted ? this.#aborted(operation, signal) : undefined;
    const watch = (cancel: () => void) => {
      if (!signal) return () => {};
      signal.addEventListener("abort", cancel, { once: true });
      return () => signal.removeEventListener("abort", cancel);
    };
    return { md, co, error, watch };
  }

  #error(err: unknown, operation: string, options: GrpcCallOptions | undefined): BerthError {
    const signal = options?.signal;
    if (signal?.aborted) {
      return new AbortedError(`${operation}: aborted`, {
        operation,
        backend: this.#backend,
        cause: signal.reason,
      });
    }
    const e = err as Partial<grpc.ServiceError>;
    const code = typeof e.code === "number" ? e.code : 2;
    const detail = e.details ?? (err as Error).message ?? String(err);
    if (code === grpc.status.UNAVAILABLE) {
      return unavailableError(this.address, operation, detail, this.#backend, err);
    }
    if (UNREADABLE_ANSWER.get(code)?.test(detail)) {
      return new ProtocolError(`${operation}: ${detail}`, {
        operation,
        backend: this.#backend,
        status: grpc.status[code],
        cause: err,
      });
    }
    return errorFromGrpcStatus(code, detail, {
      operation,
      backend: this.#backend,
      cause: err,
    });
  }

  /**
   * A unary method. Its per-call path is kept lean, as every unary RPC runs it: no listener without a
   * signal, no deadline without a timeout, one closure for the answer, and few frames above grpc-js
   * (which captures the caller's stack on every call).
   */
  #unary(
    path: string,
    operation: string,
    serialize: (v: unknown) => Buffer,
    deserialize: (b: Buffer) => unknown,
    callMetadata: (options: GrpcCallOptions | undefined) => grpc.Metadata,
    failure: (err: unknown, options: GrpcCallOptions | undefined) => unknown,
    defaultTimeout: number | undefined,
  ): (request?: unknown, options?: GrpcCallOptions) => Promise<unknown> {
    return (request, options) =>
      new Promise((resolve, reject) => {
        const signal = options?.signal;
        if (signal?.aborted) return reject(this.#aborted(operation, signal));
        const timeout = options?.timeout ?? defaultTimeout;
        const co: grpc.CallOptions = timeout === undefined ? {} : { deadline: Date.now() + timeout };
        let cancel: (() => void) | undefined;
        const call = this.#live().makeUnaryRequest(
          path,
          serialize,
          deserialize,
          request ?? {},
          callMetadata(options),
          co,
          (err, res) => {
            if (cancel) signal?.removeEventListener("abort", cancel);
            if (err) reject(failure(err, options));
            else resolve(res);
          },
        );
        if (signal) {
          cancel = () => call.cancel();
          signal.addEventListener("abort", cancel, { once: true });
        }
      });
  }

  #serverStream<T>(
    options: GrpcCallOptions | undefined,
    prepared: Prepared,
    failure: (err: unknown, options: GrpcCallOptions | undefined) => unknown,
    start: (
      md: grpc.Metadata,
      co: grpc.CallOptions,
    ) => grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>,
  ): ServerStream<T> {
    const { md, co, error, watch } = prepared;
    // Started lazily on first iteration, so an un-iterated stream opens nothing.
    let call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T> | undefined;
    let cancelled = false;
    return {
      cancel() {
        cancelled = true;
        call?.cancel();
      },
      async *[Symbol.asyncIterator]() {
        if (error) throw error;
        if (cancelled) return;
        const c = start(md, co);
        call = c;
        // A cancelled call emits 'error' (CANCELLED) after the consumer has gone; keep it from
        // becoming an unhandled error event.
        c.on("error", () => {});
        const unwatch = watch(() => c.cancel());
        try {
          for await (const message of c as AsyncIterable<T>) yield message;
        } catch (err) {
          if (cancelled && !options?.signal?.aborted) return;
          throw failure(err, options);
        } finally {
          unwatch();
          c.cancel();
        }
      },
    };
  }
}

/** A stream whose failures (but aborts) go through `mapError`. */
function refineStream<T>(stream: ServerStream<T>, mapError: (err: BerthError) => unknown): ServerStream<T> {
  return {
    cancel: () => stream.cancel(),
    async *[Symbol.asyncIterator]() {
      try {
        yield* stream;
      } catch (err) {
        throw isBerthError(err) && !(err instanceof AbortedError) ? mapError(err) : err;
      }
    },
  };
}

/** Write requests into a client stream, honouring backpressure, then end it. */
async function pump(
  requests: AsyncIterable<unknown> | Iterable<unknown>,
  call: grpc.ClientWritableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>,
): Promise<void> {
  for await (const request of requests) {
    if (call.destroyed) return;
    if (!call.write(request)) await once(call, "drain");
  }
  call.end();
}
