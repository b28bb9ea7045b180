export { DEFAULT_MAX_CONFIG_BYTES, DEFAULT_MAX_MANIFEST_BYTES } from "../oci/documents.js";
export { type AuthChallenge, parseWwwAuthenticate } from "./auth.js";
export {
  type BlobDescriptor,
  type FetchedManifest,
  isLoopbackHost,
  RegistryClient,
  type RegistryClientOptions,
  type ResolvedImage,
} from "./client.js";
export { isIndexMediaType, isManifestMediaType, MANIFEST_ACCEPT, MediaType } from "./media-types.js";
export {
  formatPlatform,
  hostPlatform,
  type Platform,
  parsePlatform,
  platformRank,
  selectManifest,
} from "./platform.js";
