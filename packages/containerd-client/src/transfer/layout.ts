// What import and export share: the names inside an OCI image layout and a `docker save` archive, the
// annotations that carry image names, and the checks on digests and JSON documents read from archives.
import { createHash, type Hash } from "node:crypto";
import { DigestMismatchError, parseDigest, parseImageRef, ValidationError } from "@berth/runtime-core";

export const OCI_LAYOUT_FILE = "oci-layout";
export const OCI_INDEX_FILE = "index.json";
export const DOCKER_MANIFEST_FILE = "manifest.json";
export const OCI_LAYOUT_VERSION = "1.0.0";

/** The tag (or whole reference) of an image in an OCI layout's index.json. */
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";
/** The full image name, as containerd and Docker (25+) write it next to ref.name. */
export const ANNOTATION_IMAGE_NAME = "io.containerd.image.name";

export const LayerMediaType = {
  ociTar: "application/vnd.oci.image.layer.v1.tar",
  ociGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  /** Docker's name for an uncompressed layer; containerd detects compression when it applies it. */
  dockerTar: "application/vnd.docker.image.rootfs.diff.tar",
  dockerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** One entry of a `docker save` manifest.json. */
export interface DockerSaveManifest {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** A path inside an OCI layout for a digest: blobs/<algorithm>/<encoded>. */
export function blobPath(digest: string): string {
  const [algorithm, encoded] = digest.split(":");
  return `blobs/${algorithm}/${encoded}`;
}

/** The digest a blobs/<algorithm>/<encoded> path names, or undefined for any other path. */
export function digestOfBlobPath(path: string): string | undefined {
  const m = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(path);
  if (!m) return undefined;
  const digest = `${m[1]}:${m[2]}`;
  try {
    parseDigest(digest);
  } catch (cause) {
    throw new ValidationError(`${path}: ${(cause as Error).message}`, { operation: "import", cause });
  }
  return digest;
}

export function hasher(digest: string | undefined): { hash: Hash; algorithm: string } {
  const algorithm = digest?.split(":")[0] ?? "sha256";
  return { hash: createHash(algorithm), algorithm };
}

/** Throw DigestMismatchError unless the bytes that passed hash to `expected` and have its size. */
export function checkDigest(
  what: string,
  expected: { digest: string; size: number },
  actual: { digest: string; size: number },
  operation: string,
): void {
  if (actual.size !== expected.size) {
    throw new DigestMismatchError(
      `${what}: ${actual.size} bytes, ${expected.size} expected`,
      expected.digest,
      actual.digest,
      { operation },
    );
  }
  if (actual.digest !== expected.digest) {
    throw new DigestMismatchError(
      `${what}: content hashes to ${actual.digest}`,
      expected.digest,
      actual.digest,
      {
        operation,
      },
    );
  }
}

/** Parse a small JSON document from an archive; bad JSON is a ValidationError naming the file. */
export function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    const value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
    if (value === null || typeof value !== "object") throw new TypeError("not an object or array");
    return value as T;
  } catch (cause) {
    throw new ValidationError(`${what} is not a valid JSON document`, { operation: "import", cause });
  }
}

/** The ref.name annotation for an image name: its tag (as containerd writes it), else the whole name. */
export function refNameOf(name: string): string {
  try {
    const ref = parseImageRef(name);
    if (ref.tag) return ref.tag;
  } catch {
    // not a reference: write it as it is
  }
  return name;
}

/** A ref.name that is a bare tag ("latest", "1.2-alpine"), not a full reference. */
export function isBareTag(refName: string): boolean {
  return /^[\w][\w.-]{0,127}$/.test(refName);
}
