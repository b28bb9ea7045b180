// Types that turn a ts-proto generic service definition into the shape of a typed client.

/** ts-proto's protobuf writer, as far as we use it: `finish()` returns the bytes and resets it for reuse. */
export interface MessageWriter {
  /** The bytes written so far; the writer is empty afterwards. */
  finish(): Uint8Array;
}

/** What ts-proto emits for each message: we only need these three functions. */
export interface MessageType<T> {
  /** Encode into `writer` (a fresh one when omitted) and return it. */
  encode(message: T, writer?: MessageWriter): MessageWriter;
  /** Decode a message from its wire bytes (throws on malformed input). */
  decode(input: Uint8Array): T;
  /** A full message from a partial one, every missing field at its protobuf default. */
  fromPartial(object: never): T;
}

/** One RPC of a ts-proto generic service definition. */
export interface MethodDefinition {
  /** The RPC's name as sent on the wire (`ListContainers`). */
  readonly name: string;
  /** The request message's codec. */
  readonly requestType: MessageType<unknown>;
  /** Whether the client sends a stream of requests. */
  readonly requestStream: boolean;
  /** The response message's codec. */
  readonly responseType: MessageType<unknown>;
  /** Whether the server answers with a stream. */
  readonly responseStream: boolean;
}

/** A ts-proto generic service definition (outputServices=generic-definitions): what a client is made from. */
export interface ServiceDefinition {
  /** The service's name without its package (`Containers`). */
  readonly name: string;
  /** The full name sent on the wire (`containerd.services.containers.v1.Containers`). */
  readonly fullName: string;
  /** Its RPCs, by the lowerCamel name the client exposes them under. */
  readonly methods: Readonly<Record<string, MethodDefinition>>;
}

type Builtin = Date | Uint8Array | bigint | string | number | boolean | undefined | null;

/** A message with every field optional, recursively: what callers pass; defaults fill the rest. */
export type DeepPartial<T> = T extends Builtin
  ? T
  : T extends readonly (infer U)[]
    ? DeepPartial<U>[]
    : T extends Map<infer K, infer V>
      ? Map<K, DeepPartial<V>>
      : T extends object
        ? { [K in keyof T]?: DeepPartial<T[K]> }
        : Partial<T>;

/**
 * A request already in protobuf wire format, sent as is. For hot paths only: a message built around a
 * large `bytes` field (a Content.Write chunk) is assembled once by its caller, where encode would copy
 * the bytes into a growing writer and then out of it again. The caller answers for its encoding.
 */
export type Encoded<T> = Uint8Array & {
  /** Type-level only (never set): the message type the bytes encode. */
  readonly __encodes?: T;
};

/** The request message type of a method definition. */
export type RequestOf<M> = M extends {
  /** The request codec the type is read from. */
  requestType: MessageType<infer T>;
}
  ? T
  : never;
/** What a request stream carries: messages to encode, or messages already encoded. */
export type StreamRequestOf<M> = DeepPartial<RequestOf<M>> | Encoded<RequestOf<M>>;
/** The response message type of a method definition. */
export type ResponseOf<M> = M extends {
  /** The response codec the type is read from. */
  responseType: MessageType<infer T>;
}
  ? T
  : never;

/** Options for one call. */
export interface GrpcCallOptions {
  /** Aborting cancels the call; the promise rejects or the iteration throws an AbortedError. */
  signal?: AbortSignal;
  /** Milliseconds until the call's deadline; a late call fails with a TimeoutError. */
  timeout?: number;
  /** Extra gRPC metadata for this call (merged over the client's defaults). */
  metadata?: Record<string, string>;
}

/** A server stream: iterate it; `cancel()` (or breaking out of the loop) ends the call. */
export interface ServerStream<T> extends AsyncIterable<T> {
  /** Ends the call (as breaking out of the loop does). */
  cancel(): void;
}

/**
 * The client function of one RPC: unary calls take a partial request and resolve to the response, server
 * streams return a ServerStream, client streams take an (async) iterable of requests.
 */
export type MethodFn<M> = M extends {
  /** A unary request. */
  requestStream: false;
  /** A unary response. */
  responseStream: false;
}
  ? (request?: DeepPartial<RequestOf<M>>, options?: GrpcCallOptions) => Promise<ResponseOf<M>>
  : M extends {
        /** A unary request. */
        requestStream: false;
        /** A stream of responses. */
        responseStream: true;
      }
    ? (request?: DeepPartial<RequestOf<M>>, options?: GrpcCallOptions) => ServerStream<ResponseOf<M>>
    : M extends {
          /** A stream of requests. */
          requestStream: true;
          /** A unary response. */
          responseStream: false;
        }
      ? (
          requests: AsyncIterable<StreamRequestOf<M>> | Iterable<StreamRequestOf<M>>,
          options?: GrpcCallOptions,
        ) => Promise<ResponseOf<M>>
      : (
          requests: AsyncIterable<StreamRequestOf<M>> | Iterable<StreamRequestOf<M>>,
          options?: GrpcCallOptions,
        ) => ServerStream<ResponseOf<M>>;

/** The typed client of one service: one method per RPC, named as in the definition (lowerCamel). */
export type ServiceClient<D extends ServiceDefinition> = {
  [K in keyof D["methods"]]: MethodFn<D["methods"][K]>;
};
