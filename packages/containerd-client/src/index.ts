export {
  CGROUPS_V1_METRICS,
  CGROUPS_V2_METRICS,
  type CgroupMetrics,
  decodeCgroupMetrics,
} from "./cgroup-metrics.js";
export {
  ContainerdClient,
  type ContainerdClientOptions,
  DEFAULT_CONTAINERD_ADDRESS,
  DEFAULT_CONTAINERD_TIMEOUT_MS,
  DEFAULT_NAMESPACE,
  LEASE_HEADER,
  NAMESPACE_HEADER,
} from "./client.js";
export {
  Container,
  type CreateContainerOptions,
  createContainer,
  type LoadedContainer,
} from "./container.js";
export {
  PROCESS_TYPE_URL,
  parseSpec,
  RUNC_OPTIONS_TYPE_URL,
  RUNC_V2,
  type RuntimeOptions,
  readRootfsFiles,
  SPEC_TYPE_URL,
  specAny,
} from "./container-record.js";
export { checkContainerId, checkSupported, containerSpecOpts, processArgs } from "./container-spec.js";
export { hasBlob, readBlob, type WriteBlobOptions, writeBlob } from "./content.js";
export { chainIds, sha256 } from "./digest.js";
export { type ContainerdEvent, subscribeEvents } from "./events.js";
export { ProcessIo, type ProcessIoOptions } from "./fifo.js";
export * from "./generated/index.js";
export { DEFAULT_SNAPSHOTTER, getImage, type ImageInfo } from "./image.js";
export {
  type InRootOptions,
  MAX_SYMLINK_HOPS,
  openInRoot,
  type ReadInRootOptions,
  readFileInRoot,
  readTextInRoot,
  resolveInRoot,
} from "./in-root.js";
export { collectGarbage, removeNamespace } from "./namespace.js";
export * from "./oci/spec.js";
export { MAX_USER_DB_BYTES, parseGroup, parsePasswd, type ResolvedUser, resolveUser } from "./oci/user.js";
export { containerdProvider } from "./provider.js";
export {
  type BlobKind,
  type ContainerdPullOptions,
  GC_EXPIRE_LABEL,
  type PullEvent,
  type PulledImage,
  type PullVia,
  pull,
  pullProgress,
  UNCOMPRESSED_LABEL,
  unpackLayers,
} from "./pull.js";
export { hasTransferService } from "./pull-transfer.js";
export * from "./registry/index.js";
export { type ContainerdRunOptions, type ContainerdRunResult, run } from "./run.js";
export { ContainerdRuntime, type ContainerdRuntimeOptions, DEFAULT_LOG_DIR } from "./runtime.js";
export { labelFilter, pullProgressOf, runtimeEventOf } from "./runtime-map.js";
export {
  ExecProcess,
  execInTask,
  listTasks,
  type OutputSink,
  signalNumber,
  Task,
  type TaskExecOptions,
  type TaskExitStatus,
  TaskProcess,
} from "./task.js";
export { fifoIo, type IoCreator, logIo, type TaskIo, uriIo } from "./task-io.js";
export { LOGGER_DRAIN_TIMEOUT_MS, LOGGER_SCRIPT, loggerUri, TaskLog } from "./task-log.js";
export * from "./transfer/index.js";
