export {
  type ConnectOptions,
  CriClient,
  type CriClientOptions,
  DEFAULT_CRI_TIMEOUT_MS,
  DEFAULT_EXEC_SYNC_MARGIN_MS,
  DEFAULT_PROBE_TIMEOUT_MS,
  type ExecSyncOptions,
  type ExecSyncResult,
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
  exitFromStatus,
  openStreamSession,
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
