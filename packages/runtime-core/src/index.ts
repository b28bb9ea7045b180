export * from "./env.js";
export * from "./errors.js";
export * from "./grpc-status.js";
