export { CriClient, type CriClientOptions, DEFAULT_CRI_ENDPOINTS } from "./client.js";
export * from "./generated/index.js";
