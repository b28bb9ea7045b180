// The manifest and index media types a registry may answer with: Docker schema 2 and OCI.
/** The media types of image manifests, indexes and configs berth handles, by short name. */
export const MediaType = {
  /** Docker image manifest, schema 2. */
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  /** Docker manifest list (a multi-platform image). */
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  /** OCI image manifest. */
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  /** OCI image index (a multi-platform image). */
  ociIndex: "application/vnd.oci.image.index.v1+json",
  /** Docker image config. */
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  /** OCI image config. */
  ociConfig: "application/vnd.oci.image.config.v1+json",
} as const;

/** The Accept header's media types for a manifest request, preferred first. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.dockerManifest,
].join(", ");

/** Whether a media type is an OCI index or a Docker manifest list. */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

/** Whether a media type is an OCI or Docker (schema 2) image manifest. */
export function isManifestMediaType(mediaType: string): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}
