export {
  compareVersions,
  DockerClient,
  type DockerClientOptions,
  MAX_API_VERSION,
  MIN_API_VERSION,
} from "./client.js";
export {
  DEFAULT_DOCKER_SOCKET,
  type Endpoint,
  parseDockerHost,
  type TlsOptions,
  tlsFromEnv,
} from "./endpoint.js";
export * from "./generated/index.js";
export type * from "./operation.js";
export { demultiplex, rawFrames } from "./streams/demux.js";
export { ndjson } from "./streams/ndjson.js";
