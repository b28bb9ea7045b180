export {
  CriClient,
  type CriClientOptions,
  type CriConnectOptions,
  DEFAULT_CRI_TIMEOUT_MS,
  DEFAULT_EXEC_SYNC_MARGIN_MS,
  DEFAULT_PROBE_TIMEOUT_MS,
  type ExecSyncOptions,
  type ExecSyncResult,
  type PortForwardCallOptions,
  type PullImageOptions,
  type RunPodSandboxOptions,
  type StatusOptions,
  type StreamOptions,
} from "./client.js";
export {
  type CrioConfig,
  type CrioContainerInfo,
  CrioHttpClient,
  type CrioHttpClientOptions,
  type CrioIdMapping,
  type CrioInfo,
} from "./crio-http.js";
export {
  type CrictlConfig,
  DEFAULT_CRI_ENDPOINTS,
  DEFAULT_CRICTL_CONFIG,
  type EndpointCandidate,
  type EndpointSource,
  endpointCandidates,
  loadCrictlConfig,
  parseCrictlConfig,
  type ResolveEndpointOptions,
} from "./endpoint.js";
export { refineCriError } from "./errors.js";
export {
  EXEC_PROTOCOLS,
  exitFromErrorChannel,
  exitFromStatus,
  openStreamSession,
  SPDY_EXEC_PROTOCOLS,
  STREAM_PROTOCOL_V1,
  STREAM_PROTOCOL_V2,
  STREAM_PROTOCOL_V3,
  STREAM_PROTOCOL_V4,
  STREAM_PROTOCOL_V5,
  type StreamExit,
  StreamSession,
  type StreamSessionOptions,
  type StreamStatus,
} from "./exec.js";
export * from "./generated/index.js";
export {
  CriLogDecoder,
  type CriLogDecoderOptions,
  type CriLogEntry,
  type CriLogRecord,
  type LogStream,
  parseCriLogRecord,
  type ReadCriLogsOptions,
  readCriLogs,
} from "./logs.js";
export {
  type ListenOptions,
  listenPortForward,
  openPortForward,
  PORT_FORWARD_PROTOCOLS,
  type PortForwardListener,
  type PortForwardOptions,
  PortForwardStream,
} from "./portforward.js";
export { criProvider } from "./provider.js";
export {
  CriRuntime,
  type CriRuntimeOptions,
  containerdHasEvents,
  DEFAULT_CRI_LOG_ROOT,
  podLogDirName,
  probeContainerEvents,
} from "./runtime.js";
export { LOG_DIRECTORY_ANNOTATION, OWNED_POD_LABEL } from "./runtime-map.js";
export { PORT_FORWARD_PROTOCOL_V1 } from "./spdy/portforward.js";
export type {
  ChannelsEnd,
  ChannelsSink,
  PortForwardChannels,
  PortForwardSink,
  StreamChannels,
  StreamTransport,
  StreamTransportOption,
} from "./transport.js";
