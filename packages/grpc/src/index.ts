export {
  DEFAULT_MAX_MESSAGE_BYTES,
  GrpcChannel,
  type GrpcChannelOptions,
  grpcTarget,
  type ServiceOptions,
} from "./channel.js";
export type {
  DeepPartial,
  Encoded,
  GrpcCallOptions,
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
