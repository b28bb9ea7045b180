// Where fromEnv() connects (DOCKER_HOST, DOCKER_CONTEXT, the config's current context, the default sockets).
export {
  DEFAULT_DOCKER_SOCKET,
  type DockerEndpoint,
  type DockerEndpointOptions,
  type DockerTlsSettings,
  resolveDockerEndpoint,
} from "@berth/runtime-core/internal";
export { decodePathStat, isDirectoryMode, PATH_STAT_HEADER, type PathStat } from "./archive.js";
export {
  compareVersions,
  DockerClient,
  type DockerClientOptions,
  MAX_API_VERSION,
  MIN_API_VERSION,
} from "./client.js";
export { type Endpoint, loadTls, parseDockerHost, type TlsOptions } from "./endpoint.js";
export * from "./generated/index.js";
export type * from "./operation.js";
export { dockerProvider } from "./provider.js";
export { DockerRuntime } from "./runtime.js";
export {
  type HostKeyVerdict,
  knownHostsAccepts,
  knownHostsVerdict,
  parseSshHost,
  SshDialer,
  type SshOptions,
  type SshTarget,
} from "./ssh.js";
export { demultiplex, rawFrames } from "./streams/demux.js";
export { ndjson } from "./streams/ndjson.js";
export { packTar, type TarEntry, type TarHeader, unpackTar } from "./tar.js";
export {
  collect,
  type DockerExecOptions,
  type DockerExecResult,
  type ExecSession,
  execRun,
  execStart,
} from "./verbs/exec.js";
export { type DockerPullOptions, pull, pullProgress, toRegistryAuth } from "./verbs/pull.js";
