// @berth/runtime-core: the public contract every berth backend implements (the Runtime interface and its
// types, the container spec, typed errors, image references, registry credentials, choosing a backend).
// The plumbing berth's own adapters share lives in `@berth/runtime-core/internal`, outside this contract.
export * from "./connect.js";
export * from "./credentials.js";
export type { DockerAuthEntry, DockerConfig, DockerConfigOptions, EnvMap } from "./docker-config.js";
export * from "./errors.js";
export * from "./image-ref.js";
export type * from "./runtime.js";
export * from "./spec.js";
