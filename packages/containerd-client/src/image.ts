// Reading a pulled image back from containerd: image record → (index →) manifest → config → chain IDs.
import { NotFoundError, ProtocolError } from "@berth/runtime-core";
import type { ContainerdClient } from "./client.js";
import { readBlob } from "./content.js";
import { chainIds } from "./digest.js";
import type { Image } from "./generated/github.com/containerd/containerd/api/services/images/v1/images.js";
import type { ociImageSpec } from "./generated/index.js";
import {
  type Check,
  checkImageConfig,
  checkIndex,
  checkManifest,
  type Fail,
  DEFAULT_MAX_CONFIG_BYTES as MAX_CONFIG,
  DEFAULT_MAX_MANIFEST_BYTES as MAX_MANIFEST,
  parseDocument,
} from "./oci/documents.js";
import { isIndexMediaType } from "./registry/media-types.js";
import { formatPlatform, hostPlatform, type Platform, selectManifest } from "./registry/platform.js";

/** The snapshotter used when none is named (containerd's default on Linux). */
export const DEFAULT_SNAPSHOTTER = "overlayfs";

/** An image record with its manifest and config for one platform, as getImage() reads them. */
export interface ImageInfo {
  /** The image record's name, e.g. "127.0.0.1:5000/busybox:latest". */
  name: string;
  /** The image record as containerd keeps it. */
  record: Image;
  /** The digest of the manifest for the platform. */
  manifestDigest: string;
  /** The manifest. */
  manifest: ociImageSpec.ImageManifest;
  /** The digest of the image config. */
  configDigest: string;
  /** The image config. */
  config: ociImageSpec.ImageConfig;
  /** Chain IDs of the layers, bottom first; the last one is the rootfs parent snapshot. */
  chainIds: string[];
}

const fail: Fail = (message) =>
  new ProtocolError(message, { operation: "image.read", backend: "containerd" });

/** A document of the content store (index, manifest, config), read with a cap and checked for its shape:
 *  the store holds what any client put there (ctr, another pull), so it is not trusted more than a
 *  registry. Past the cap: ProtocolError; a bad shape: `fail`'s error. */
export async function readDocument<T>(
  client: ContainerdClient,
  digest: string,
  maxBytes: number,
  check: Check<T>,
  fail: Fail,
  signal?: AbortSignal,
): Promise<T> {
  return parseDocument(await readBlob(client, digest, signal, maxBytes), digest, check, fail);
}

/** Load an image's manifest and config for a platform (default: this host). */
export async function getImage(
  client: ContainerdClient,
  name: string,
  options: { platform?: Platform; signal?: AbortSignal } = {},
): Promise<ImageInfo> {
  const { image } = await client.images.get({ name }, options.signal ? { signal: options.signal } : {});
  if (!image?.target) throw new NotFoundError(`image ${name} has no target`, { operation: "Images.Get" });
  let target = image.target;
  const platform = options.platform ?? hostPlatform();
  for (let depth = 0; isIndexMediaType(target.mediaType); depth++) {
    const index = await readDocument(client, target.digest, MAX_MANIFEST, checkIndex, fail, options.signal);
    const entry = selectManifest(index.manifests, platform);
    if (!entry || depth > 4) {
      throw new NotFoundError(`image ${name} has no manifest for ${formatPlatform(platform)}`, {
        operation: "image.read",
      });
    }
    target = { mediaType: entry.mediaType, digest: entry.digest, size: BigInt(entry.size), annotations: {} };
  }
  const { signal } = options;
  const manifest = await readDocument(client, target.digest, MAX_MANIFEST, checkManifest, fail, signal);
  const config = await readDocument(
    client,
    manifest.config.digest,
    MAX_CONFIG,
    checkImageConfig,
    fail,
    signal,
  );
  return {
    name,
    record: image,
    manifestDigest: target.digest,
    manifest,
    configDigest: manifest.config.digest,
    config,
    chainIds: chainIds(config.rootfs?.diff_ids ?? []),
  };
}
