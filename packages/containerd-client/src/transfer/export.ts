// Export images from containerd's content store as an OCI image layout tarball, optionally also readable by
// `docker load` (a manifest.json next to index.json, as containerd's exporter and Docker 25+ write it).
// The graph is resolved before the stream is returned, so a missing image or blob fails the call; the
// blobs are then streamed out of the store one by one, verified on the way, under a lease that keeps
// them from being collected while the archive is read.
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import {
  AbortedError,
  NotFoundError,
  ProtocolError,
  parseImageRef,
  ValidationError,
} from "@berth/runtime-core";
import type { ContainerdClient } from "../client.js";
import { hasBlob } from "../content.js";
import type { ociImageSpec } from "../generated/index.js";
import { readDocument } from "../image.js";
import { CONFIG_DOCUMENT, type DocumentKind, INDEX_DOCUMENT, MANIFEST_DOCUMENT } from "../oci/documents.js";
import { GC_EXPIRE_LABEL } from "../pull.js";
import type { BlobDescriptor } from "../registry/client.js";
import { isIndexMediaType, isManifestMediaType, MediaType } from "../registry/media-types.js";
import { formatPlatform, hostPlatform, type Platform, selectManifest } from "../registry/platform.js";
import {
  ANNOTATION_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  blobPath,
  checkDigest,
  DOCKER_MANIFEST_FILE,
  type DockerSaveManifest,
  hasher,
  OCI_INDEX_FILE,
  OCI_LAYOUT_FILE,
  OCI_LAYOUT_VERSION,
  refNameOf,
} from "./layout.js";
import { type TarWriteEntry, writeTar } from "./tar.js";

/** Options of exportImage(). */
export interface ExportOptions {
  /** "oci": an OCI image layout; "docker": the same plus a manifest.json for `docker load` (default "oci"). */
  format?: "oci" | "docker";
  /** Which manifests of multi-platform images: one platform's (default: this host's), or "all" present. */
  platform?: Platform | "all";
  /** Cancels the export: an AbortedError once the signal fires. */
  signal?: AbortSignal;
  /** Lifetime of the lease that holds the blobs while the archive is read (default 1 h). */
  leaseExpiryMs?: number;
}

const OPERATION = "export";

interface ExportedManifest {
  descriptor: BlobDescriptor;
  manifest: ociImageSpec.ImageManifest;
  platform: Platform | undefined;
}

interface ExportedImage {
  name: string;
  target: BlobDescriptor;
  manifests: ExportedManifest[];
}

function notFound(message: string): NotFoundError {
  return new NotFoundError(`export: ${message}`, { operation: OPERATION });
}

/**
 * Export images (by record name) as a tar stream. Resolves once every manifest and config has been read;
 * the blobs are read from the store as the stream is consumed. Destroy the stream to stop early.
 */
export async function exportImage(
  client: ContainerdClient,
  images: string | readonly string[],
  options: ExportOptions = {},
): Promise<Readable> {
  const names = typeof images === "string" ? [images] : [...images];
  if (names.length === 0) throw new ValidationError("export: no image given", { operation: OPERATION });
  const signal = options.signal;
  const call = signal ? { signal } : {};
  const platform = options.platform ?? hostPlatform();
  // Blobs in the order they go into the archive (children before parents), each once.
  const blobs = new Map<string, BlobDescriptor>();
  const add = (d: BlobDescriptor) => {
    if (!blobs.has(d.digest)) blobs.set(d.digest, { mediaType: d.mediaType, digest: d.digest, size: d.size });
  };

  // The store's documents are read with the caps and shape checks a registry's get.
  const fail = (message: string) =>
    new ProtocolError(`export: ${message}`, { operation: OPERATION, backend: "containerd" });
  const read = <T>(digest: string, kind: DocumentKind<T>) =>
    readDocument(client, digest, kind.maxBytes, kind.check, fail, signal);
  const walk = async (d: BlobDescriptor, depth: number): Promise<ExportedManifest[]> => {
    if (isIndexMediaType(d.mediaType)) {
      if (depth > 4) throw new ValidationError(`export: indexes nested too deep at ${d.digest}`);
      const index = await read(d.digest, INDEX_DOCUMENT);
      const entries = index.manifests;
      let chosen: typeof entries;
      if (platform === "all") {
        chosen = [];
        for (const m of entries) if (await hasBlob(client, m.digest)) chosen.push(m);
      } else {
        const m = selectManifest(entries, platform);
        chosen = m ? [m] : [];
        if (m && !(await hasBlob(client, m.digest))) {
          throw notFound(`the manifest of ${d.digest} for ${formatPlatform(platform)} is not in the store`);
        }
      }
      if (chosen.length === 0) {
        throw notFound(
          `index ${d.digest} has no manifest ${platform === "all" ? "in the store" : `for ${formatPlatform(platform)}`}`,
        );
      }
      const out: ExportedManifest[] = [];
      for (const m of chosen) {
        out.push(
          ...(await walk(
            { mediaType: m.mediaType, digest: m.digest, size: m.size, platform: m.platform },
            depth + 1,
          )),
        );
      }
      add(d);
      return out;
    }
    if (!isManifestMediaType(d.mediaType)) {
      throw new ValidationError(`export: ${d.digest} has unsupported media type ${d.mediaType}`, {
        operation: OPERATION,
      });
    }
    const manifest = await read(d.digest, MANIFEST_DOCUMENT);
    for (const b of [manifest.config, ...manifest.layers]) {
      if (!(await hasBlob(client, b.digest))) {
        if (b.urls?.length) continue; // non-distributable: left out, as registries and Docker do
        throw notFound(`blob ${b.digest} of manifest ${d.digest} is not in the store`);
      }
      add(b);
    }
    add(d);
    let p = d.platform;
    if (!p) {
      const config = await read(manifest.config.digest, CONFIG_DOCUMENT);
      if (config.os && config.architecture) {
        p = { os: config.os, architecture: config.architecture, variant: config.variant };
      }
    }
    return [{ descriptor: d, manifest, platform: p }];
  };

  const exported: ExportedImage[] = [];
  for (const name of names) {
    const { image } = await client.images.get({ name }, call);
    const t = image?.target;
    if (!t) throw notFound(`image ${name} has no target`);
    const target = { mediaType: t.mediaType, digest: t.digest, size: Number(t.size) };
    exported.push({ name, target, manifests: await walk(target, 0) });
  }

  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: exported.map((e) => ({
      ...e.target,
      annotations: { [ANNOTATION_IMAGE_NAME]: e.name, [ANNOTATION_REF_NAME]: refNameOf(e.name) },
    })),
  };
  const metadata: TarWriteEntry[] = [
    { name: OCI_LAYOUT_FILE, data: Buffer.from(JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })) },
    { name: OCI_INDEX_FILE, data: Buffer.from(JSON.stringify(index)) },
  ];
  if (options.format === "docker") {
    metadata.push({
      name: DOCKER_MANIFEST_FILE,
      data: Buffer.from(JSON.stringify(dockerManifest(exported))),
    });
  } else if (options.format !== undefined && options.format !== "oci") {
    throw new ValidationError(`export: unknown format ${JSON.stringify(options.format)}`, {
      operation: OPERATION,
    });
  }

  const leaseExpiryMs = options.leaseExpiryMs ?? 3_600_000;
  async function* entries(): AsyncGenerator<TarWriteEntry> {
    // Made when the stream is first read, so a stream never read leaves no lease.
    const leaseId = `berth-export-${randomUUID()}`;
    const expiry = new Date(Date.now() + leaseExpiryMs).toISOString();
    await client.leases.create({ id: leaseId, labels: { [GC_EXPIRE_LABEL]: expiry } }, call);
    try {
      for (const digest of blobs.keys()) {
        await client.leases.addResource({ id: leaseId, resource: { id: digest, type: "content" } }, call);
      }
      yield* metadata;
      const dirs = new Set<string>();
      for (const b of blobs.values()) {
        const dir = blobPath(b.digest).split("/").slice(0, 2).join("/");
        if (!dirs.has(dir)) {
          if (dirs.size === 0) yield { name: "blobs", type: "directory" };
          dirs.add(dir);
          yield { name: dir, type: "directory" };
        }
        yield {
          name: blobPath(b.digest),
          size: b.size,
          mode: 0o444,
          data: () => readVerified(client, b, signal),
        };
      }
    } finally {
      await client.leases.delete({ id: leaseId }).catch(() => {});
    }
  }

  const stream = Readable.from(writeTar(entries()), { objectMode: false });
  if (signal) {
    const onAbort = () =>
      stream.destroy(new AbortedError("export: aborted", { operation: OPERATION, cause: signal.reason }));
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    stream.once("close", () => signal.removeEventListener("abort", onAbort));
  }
  return stream;
}

/** manifest.json for `docker load`: per manifest, its config, tags and layer paths. One manifest per
 *  image (docker load takes no index): the one for this host, else the first. */
function dockerManifest(images: ExportedImage[]): DockerSaveManifest[] {
  const out = new Map<string, DockerSaveManifest>();
  const host = hostPlatform();
  for (const image of images) {
    const pick = selectManifest(image.manifests, host) ?? (image.manifests[0] as ExportedManifest);
    let entry = out.get(pick.descriptor.digest);
    if (!entry) {
      entry = {
        Config: blobPath(pick.manifest.config.digest),
        RepoTags: [],
        Layers: pick.manifest.layers.map((l) => blobPath(l.digest)),
      };
      out.set(pick.descriptor.digest, entry);
    }
    const tag = dockerTag(image.name);
    if (tag && !entry.RepoTags?.includes(tag)) entry.RepoTags?.push(tag);
  }
  return [...out.values()];
}

/** The name as `docker save` writes it ("busybox:latest"), or undefined when it has no tag to load by. */
function dockerTag(name: string): string | undefined {
  try {
    const ref = parseImageRef(name);
    if (ref.digest || !ref.tag) return undefined;
    return ref.familiar;
  } catch {
    return undefined;
  }
}

/** A blob's bytes from the store, checked against its digest and size as they pass. */
async function* readVerified(
  client: ContainerdClient,
  blob: BlobDescriptor,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  const { hash, algorithm } = hasher(blob.digest);
  let size = 0;
  for await (const r of client.content.read({ digest: blob.digest }, signal ? { signal } : {})) {
    hash.update(r.data);
    size += r.data.byteLength;
    if (size > blob.size) break;
    yield r.data;
  }
  checkDigest(
    `blob ${blob.digest} in the content store`,
    { digest: blob.digest, size: blob.size },
    { digest: `${algorithm}:${hash.digest("hex")}`, size },
    OPERATION,
  );
}
