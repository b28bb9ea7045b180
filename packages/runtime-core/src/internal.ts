// @berth/runtime-core/internal: the plumbing berth's own adapters share. Not part of the public contract
// (that is `@berth/runtime-core`): it may change in any release.
export * from "./arg-fields.js";
export { ArgReader, show as showArg } from "./arg-reader.js";
export * from "./call-args.js";
export * from "./cri-log.js";
export * from "./docker-config.js";
export * from "./docker-endpoint.js";
export * from "./env.js";
export * from "./grpc-status.js";
export * from "./kit/abort.js";
export * from "./kit/base.js";
export * from "./kit/errors.js";
export * from "./kit/output.js";
export * from "./kit/ready.js";
export * from "./kit/run.js";
export * from "./kit/tar.js";
export * from "./log-root.js";
export * from "./message.js";
