// The contract between the generated operation table (src/generated/operations.ts) and the
// hand-written client: how an operation is described, and what each kind of response becomes.
import type { Duplex, Readable } from "node:stream";

/** How the daemon's answer to an operation is read. The generator's own table decides it per operation:
 *  the swagger does not say. */
export type ResponseKind =
  /** One JSON value. */
  | "json"
  /** A short text body (ping's "OK"). */
  | "text"
  /** No body (204, or HEAD); headers may still carry data. */
  | "empty"
  /** Newline-delimited JSON: pull/push/build/load progress, events, stats. */
  | "ndjson"
  /** stdout/stderr stream: multiplexed (application/vnd.docker.multiplexed-stream) or raw (TTY),
   *  told apart by Content-Type at run time (logs, attach, exec start). */
  | "stream"
  /** A tar archive body (export, save, get archive). */
  | "tar"
  /** A hijacked connection after `Upgrade: tcp` (attach/exec with stdin), or h2c for session. */
  | "upgrade";

/** What the request body is. */
export type BodyKind = "none" | "json" | "tar" | "text";

/** How a parameter value is put on the wire. */
export type ParamEncoding =
  /** String(value); booleans as "true"/"false"; arrays repeated (?a=1&a=2). */
  | "plain"
  /** JSON.stringify(value) in a query string (`filters`, `buildargs`, `labels`, `cachefrom`...). */
  | "json"
  /** base64url(JSON.stringify(value)) in a header (X-Registry-Auth, X-Registry-Config). */
  | "base64json";

/** How one parameter of an operation is sent. */
export interface ParamSpec {
  /** Property name in the generated Params interface. */
  readonly name: string;
  /** Name on the wire (path placeholder, query key or header name). */
  readonly wire: string;
  /** Where it goes: the path, the query string or a header. */
  readonly in: "path" | "query" | "header";
  /** How its value is encoded. */
  readonly encoding: ParamEncoding;
  /** Whether the spec requires it. */
  readonly required: boolean;
}

/** One Engine API operation, as the generated table describes it to the client. */
export interface OperationSpec {
  /** The swagger operationId, e.g. "ContainerInspect". */
  readonly id: string;
  /** The HTTP method. */
  readonly method: "GET" | "POST" | "PUT" | "DELETE" | "HEAD";
  /** Path template with {placeholders}, without the /vX.Y prefix. */
  readonly path: string;
  /** Group and method name on the client: containers.inspect. */
  readonly group: string;
  /** The method's name within its group: `inspect` of containers.inspect. */
  readonly name: string;
  /** Its path, query and header parameters. */
  readonly params: readonly ParamSpec[];
  /** What its request body is. */
  readonly body: BodyKind;
  /** Content-Type of the request body when body is not "none". */
  readonly bodyContentType?: string;
  /** How the answer is read. */
  readonly response: ResponseKind;
  /** The lowest Engine API version that has this operation, when later than the oldest spec we know. */
  readonly minVersion?: string;
}

/** Options every call accepts. */
export interface RequestOptions {
  /** Aborting cancels the request and closes its connection (for streams too). */
  signal?: AbortSignal;
  /** Deadline in ms (0 = none; default: the client's `timeout`): for the whole answer of a call that is
   *  not a stream, for the headers of a stream. */
  timeout?: number;
  /** A stream's longest silence in ms (0 = none; default: the client's `idleTimeout`). */
  idleTimeout?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** A demultiplexed or raw stdout/stderr frame. `data` is a view into the received chunk (no copy). */
export interface StreamFrame {
  /** The stream the bytes belong to ("system" carries the daemon's own messages). */
  stream: "stdin" | "stdout" | "stderr" | "system";
  /** The bytes. */
  data: Uint8Array;
}

/** The body of a "stream" response: iterate frames, or split into stdout/stderr Readables. */
export interface FrameStream extends AsyncIterable<StreamFrame> {
  /** True when the daemon sent a raw (TTY) stream: every frame is then "stdout". */
  readonly tty: boolean;
  /** Separate Readables; reading them consumes the stream (use either this or iteration). */
  split(): {
    /** The stdout bytes. */
    stdout: Readable;
    /** The stderr bytes (nothing for a TTY stream). */
    stderr: Readable;
  };
  /** Stop reading and close the connection. */
  close(): void;
}

/** A hijacked connection: write stdin, read frames, half-close stdin with `end()`. */
export interface Upgraded extends FrameStream {
  /** The underlying connection. */
  readonly socket: Duplex;
  /** Writes to the process's stdin. */
  write(data: Uint8Array | string): Promise<void>;
  /** Half-close: the process sees EOF on stdin; output keeps flowing. */
  end(): void;
}

/** An NDJSON response: an async iterable of parsed objects that throws a typed error when the daemon
 *  reports one inside the stream ({"error": ..., "errorDetail": ...}). */
export interface JsonStream<T> extends AsyncIterable<T> {
  /** Stop reading and close the connection. */
  close(): void;
}

/** Response headers by lower-case name, as undici gives them. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** A response with its headers, for operations whose headers carry the answer (HEAD archive info). */
export interface WithHeaders<T> {
  /** The body (nothing for an empty response). */
  body: T;
  /** The response headers. */
  headers: ResponseHeaders;
}

/** A tar body, read as it arrives; `headers` keeps the response headers (the archive's path stat). */
export interface TarStream extends Readable {
  /** The response headers. */
  readonly headers: ResponseHeaders;
}

/** What a method returns for a response kind and the spec's result type. */
export type ResponseFor<K extends ResponseKind, T> = K extends "json"
  ? Promise<T>
  : K extends "text"
    ? Promise<string>
    : K extends "empty"
      ? Promise<WithHeaders<void>>
      : K extends "ndjson"
        ? Promise<JsonStream<T>>
        : K extends "stream"
          ? Promise<FrameStream>
          : K extends "tar"
            ? Promise<TarStream>
            : K extends "upgrade"
              ? Promise<Upgraded>
              : never;

/** Body types accepted for a "tar" request body: a Node stream, an async iterable of bytes, or bytes. */
export type TarBody = Readable | AsyncIterable<Uint8Array> | Uint8Array;
