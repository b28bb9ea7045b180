export * from "./credentials.js";
export * from "./docker-config.js";
export * from "./docker-endpoint.js";
export * from "./env.js";
export * from "./errors.js";
export * from "./grpc-status.js";
export * from "./image-ref.js";
export type * from "./runtime.js";
export * from "./spec.js";
