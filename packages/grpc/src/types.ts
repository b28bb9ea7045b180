// Types that turn a ts-proto generic service definition into the shape of a typed client.

/** What ts-proto emits for each message: we only need these three functions. */
export interface MessageType<T> {
  encode(message: T): { finish(): Uint8Array };
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

export type RequestOf<M> = M extends { requestType: MessageType<infer T> } ? T : never;
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
          requests: AsyncIterable<DeepPartial<RequestOf<M>>> | Iterable<DeepPartial<RequestOf<M>>>,
          options?: CallOptions,
        ) => Promise<ResponseOf<M>>
      : (
          requests: AsyncIterable<DeepPartial<RequestOf<M>>> | Iterable<DeepPartial<RequestOf<M>>>,
          options?: CallOptions,
        ) => ServerStream<ResponseOf<M>>;

/** The typed client of one service: one method per RPC, named as in the definition (lowerCamel). */
export type ServiceClient<D extends ServiceDefinition> = {
  [K in keyof D["methods"]]: MethodFn<D["methods"][K]>;
};
