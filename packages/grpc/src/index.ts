export { DEFAULT_MAX_MESSAGE_BYTES, GrpcChannel, type GrpcChannelOptions, grpcTarget } from "./channel.js";
export type {
  CallOptions,
  DeepPartial,
  Encoded,
  MessageType,
  MethodDefinition,
  MethodFn,
  RequestOf,
  ResponseOf,
  ServerStream,
  ServiceClient,
  ServiceDefinition,
  StreamRequestOf,
} from "./types.js";
