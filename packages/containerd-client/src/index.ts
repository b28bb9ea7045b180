export {
  ContainerdClient,
  type ContainerdClientOptions,
  DEFAULT_CONTAINERD_ADDRESS,
  DEFAULT_NAMESPACE,
  LEASE_HEADER,
  NAMESPACE_HEADER,
} from "./client.js";
export * from "./generated/index.js";
