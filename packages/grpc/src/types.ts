// Types that turn a ts-proto generic service definition into the shape of a typed client.

/** ts-proto's protobuf writer, as far as we use it: `finish()` returns the bytes and resets it for reuse. */
export interface MessageWriter {
  finish(): Uint8Array;
}

/** What ts-proto emits for each message: we only need these three functions. */
export interface MessageType<T> {
  /** Encode into `writer` (a fresh one when omitted) and return it. */
  encode(message: T, writer?: MessageWriter): MessageWriter;
  decode(input: Uint8Array): T;
  fromPartial(object: never): T;
}

export interface MethodDefinition {
  readonly name: string;
  readonly requestType: MessageType<unknown>;
  readonly requestStream: boolean;
  readonly responseType: MessageType<unknown>;
  readonly responseStream: boolean;
}

export interface ServiceDefinition {
  readonly name: string;
  readonly fullName: string;
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
export type Encoded<T> = Uint8Array & { readonly __encodes?: T };

export type RequestOf<M> = M extends { requestType: MessageType<infer T> } ? T : never;
/** What a request stream carries: messages to encode, or messages already encoded. */
export type StreamRequestOf<M> = DeepPartial<RequestOf<M>> | Encoded<RequestOf<M>>;
export type ResponseOf<M> = M extends { responseType: MessageType<infer T> } ? T : never;

/** Options for one call. */
export interface CallOptions {
  /** Aborting cancels the call; the promise rejects or the iteration throws an AbortedError. */
  signal?: AbortSignal;
  /** Milliseconds until the call's deadline; a late call fails with a TimeoutError. */
  timeout?: number;
  /** Extra gRPC metadata for this call (merged over the client's defaults). */
  metadata?: Record<string, string>;
}

/** A server stream: iterate it; `cancel()` (or breaking out of the loop) ends the call. */
export interface ServerStream<T> extends AsyncIterable<T> {
  cancel(): void;
}

export type MethodFn<M> = M extends { requestStream: false; responseStream: false }
  ? (request?: DeepPartial<RequestOf<M>>, options?: CallOptions) => Promise<ResponseOf<M>>
  : M extends { requestStream: false; responseStream: true }
    ? (request?: DeepPartial<RequestOf<M>>, options?: CallOptions) => ServerStream<ResponseOf<M>>
    : M extends { requestStream: true; responseStream: false }
      ? (
          requests: AsyncIterable<StreamRequestOf<M>> | Iterable<StreamRequestOf<M>>,
          options?: CallOptions,
        ) => Promise<ResponseOf<M>>
      : (
          requests: AsyncIterable<StreamRequestOf<M>> | Iterable<StreamRequestOf<M>>,
          options?: CallOptions,
        ) => ServerStream<ResponseOf<M>>;

/** The typed client of one service: one method per RPC, named as in the definition (lowerCamel). */
export type ServiceClient<D extends ServiceDefinition> = {
  [K in keyof D["methods"]]: MethodFn<D["methods"][K]>;
};
