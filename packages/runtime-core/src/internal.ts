// @berth/runtime-core/internal: the plumbing berth's own adapters share (the adapter kit). Not part of
// the public contract: it may change in any release.
export * from "./kit/abort.js";
export * from "./kit/errors.js";
export * from "./kit/output.js";
export * from "./kit/run.js";
export * from "./kit/tar.js";
