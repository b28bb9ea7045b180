// Import OCI image layouts and `docker save` archives into containerd's content store, the way containerd's
// own importer does: every file of the archive is streamed into the store under a lease (blob paths are
// verified against the digest they name, and the bytes are hashed here too, as the daemon skips bytes it
// already holds), then the image graph is walked from index.json (or a Docker schema 2 manifest is made
// from each manifest.json entry), parents get their GC reference labels, the layers are optionally
// unpacked, and the image records are written last. Any failure or abort undoes the records and deletes
// the lease synchronously, so nothing the import wrote survives it.
import { randomUUID } from "node:crypto";
import {
  AbortedError,
  type BerthError,
  DigestMismatchError,
  isBerthError,
  NotFoundError,
  parseImageRef,
  ValidationError,
} from "@berth/runtime-core";
import type { ContainerdClient } from "../client.js";
import { hasBlob, writeBlob } from "../content.js";
import type { Image } from "../generated/github.com/containerd/containerd/api/services/images/v1/images.js";
import type { ociImageSpec } from "../generated/index.js";
import { DEFAULT_SNAPSHOTTER, readDocument } from "../image.js";
import {
  CONFIG_DOCUMENT,
  DEFAULT_MAX_MANIFEST_BYTES,
  type DocumentKind,
  INDEX_DOCUMENT,
  MANIFEST_DOCUMENT,
  parseDocument,
} from "../oci/documents.js";
import { GC_EXPIRE_LABEL, type PullEvent, unpackLayers } from "../pull.js";
import type { BlobDescriptor } from "../registry/client.js";
import { isIndexMediaType, isManifestMediaType, MediaType } from "../registry/media-types.js";
import { formatPlatform, hostPlatform, type Platform, selectManifest } from "../registry/platform.js";
import {
  ANNOTATION_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  checkDigest,
  DOCKER_MANIFEST_FILE,
  type DockerSaveManifest,
  digestOfBlobPath,
  hasher,
  isBareTag,
  LayerMediaType,
  OCI_INDEX_FILE,
  OCI_LAYOUT_FILE,
  OCI_LAYOUT_VERSION,
  parseJson,
} from "./layout.js";
import { archiveEntries, type ImportSource } from "./source.js";
import { cleanName } from "./tar.js";

export type { ImportSource } from "./source.js";

/** Options of importImage(). */
export interface ImportOptions {
  /** Name the image this, overriding names in the archive; the archive must hold exactly one image. */
  name?: string;
  /** Prefix for index.json entries whose ref.name is a bare tag: "<baseName>:<tag>". */
  baseName?: string;
  /** Import only this platform's manifest from multi-platform indexes (default: every manifest present). */
  platform?: Platform;
  /** Unpack the layers into snapshots for `platform`, else this host's platform (default false). */
  unpack?: boolean;
  /** The snapshotter to unpack into (default "overlayfs"). */
  snapshotter?: string;
  /** Cancels the import: an AbortedError once the signal fires. */
  signal?: AbortSignal;
  /** Called with each step of the import. */
  onProgress?: (event: ImportEvent) => void;
  /** Lease lifetime, a safety net should this process die mid-import (default 1 h). */
  leaseExpiryMs?: number;
}

/** One step of an import, as `onProgress` receives it. */
export type ImportEvent =
  /** The lease that holds the import's content until it is done. */
  | {
      /** Always "lease". */
      type: "lease";
      /** The lease id. */
      id: string;
    }
  /** A file of the archive is being written into the content store. */
  | {
      /** Always "blob-progress". */
      type: "blob-progress";
      /** The file's path in the archive. */
      path: string;
      /** Its digest, when known from its path. */
      digest: string | undefined;
      /** Bytes written so far. */
      offset: number;
      /** Its size in bytes. */
      size: number;
    }
  /** Committed; `written` is 0 when the store already held the bytes (they were still verified). */
  | {
      /** Always "blob-done". */
      type: "blob-done";
      /** The file's path in the archive. */
      path: string;
      /** Its digest. */
      digest: string;
      /** Its size in bytes. */
      size: number;
      /** Bytes written to the store. */
      written: number;
    }
  /** A layer was applied to a snapshot (or its snapshot already existed), as a pull reports it. */
  | Extract<
      PullEvent,
      {
        /** Always "layer-unpacked". */
        type: "layer-unpacked";
      }
    >
  /** An image record was made or updated. */
  | {
      /** Always "image". */
      type: "image";
      /** The image. */
      image: ImportedImage;
    };

/** One manifest an import stored. */
export interface ImportedManifest {
  /** The manifest's digest. */
  digest: string;
  /** Its config's digest. */
  configDigest: string;
  /** Its platform, when the index or config says. */
  platform: Platform | undefined;
  /** Chain IDs, when this manifest was unpacked. */
  chainIds: string[] | undefined;
}

/** One image an import recorded. */
export interface ImportedImage {
  /** The image record's name. */
  name: string;
  /** The image record's target: the index or manifest named in the archive (a manifest made here for
   *  `docker save` archives). */
  target: BlobDescriptor;
  /** False when a record of that name existed and now points at the imported target. */
  created: boolean;
  /** The manifests stored for it. */
  manifests: ImportedManifest[];
}

const OPERATION = "import";
const DETAILS = { operation: OPERATION, backend: "containerd" } as const;
/** Largest index.json / manifest.json / oci-layout we read into memory: an index's cap. */
const MAX_METADATA_BYTES = DEFAULT_MAX_MANIFEST_BYTES;
/** Symlinks followed to find one file of an archive. */
const MAX_LINK_HOPS = 40;
/** Entries of an archive: each is remembered until the end (an image has a few hundred). */
const MAX_ENTRIES = 65_536;
/** Files without a digest in their path up to this size are kept in memory until we know whether the
 *  image needs them (docker save's <id>/json, VERSION...), within MAX_BUFFERED_BYTES in all. */
const SMALL_FILE_BYTES = 1024 * 1024;
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
const MAX_INDEX_DEPTH = 4;

interface ArchiveFile {
  digest: string;
  size: number;
  /** The first bytes, to tell compressed layers from plain tar. */
  head: Uint8Array;
  /** Held here rather than in the store (small files not named by digest). */
  bytes?: Uint8Array | undefined;
}

interface RootImage {
  name: string | undefined;
  descriptor: BlobDescriptor;
}

function invalid(message: string): ValidationError {
  return new ValidationError(`import: ${message}`, DETAILS);
}

/** Hashes an entry's bytes as they pass, and checks them against the digest and size they should have. */
class VerifiedBody {
  readonly #body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  readonly #expected: { digest: string | undefined; size: number };
  readonly #path: string;
  readonly #signal: AbortSignal;
  readonly #hash;
  #read = 0;
  #started = false;
  #result: { digest: string; size: number } | undefined;
  head: Uint8Array = new Uint8Array(0);

  constructor(
    path: string,
    body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    expected: VerifiedBody["expected"],
    signal: AbortSignal,
  ) {
    this.#path = path;
    this.#body = body;
    this.#expected = expected;
    this.#signal = signal;
    const { hash, algorithm } = hasher(expected.digest);
    this.#hash = { hash, algorithm };
  }

  get expected(): { digest: string | undefined; size: number } {
    return this.#expected;
  }

  /** The bytes from `from` on; all of them are hashed. Throws before ending when they do not verify. */
  async *bytes(from = 0): AsyncGenerator<Uint8Array> {
    if (this.#started) throw invalid(`${this.#path} read twice`);
    this.#started = true;
    for await (const chunk of this.#body) {
      if (this.#signal.aborted) throw aborted(this.#signal);
      if (this.head.byteLength < 8)
        this.head = Buffer.concat([this.head, chunk.subarray(0, 8)]).subarray(0, 8);
      this.#hash.hash.update(chunk);
      const start = this.#read;
      this.#read += chunk.byteLength;
      if (this.#read > from) yield chunk.subarray(Math.max(0, from - start));
    }
    this.#finish();
  }

  /** Read and verify what nobody read (the store already held the blob). */
  async result(): Promise<{ digest: string; size: number }> {
    if (!this.#started) for await (const _ of this.bytes(Number.POSITIVE_INFINITY));
    if (!this.#result) throw invalid(`${this.#path} was not read to its end`);
    return this.#result;
  }

  #finish(): void {
    const actual = { digest: `${this.#hash.algorithm}:${this.#hash.hash.digest("hex")}`, size: this.#read };
    if (actual.size !== this.#expected.size && this.#expected.digest === undefined) {
      throw invalid(`${this.#path}: ${actual.size} bytes, the archive said ${this.#expected.size}`);
    }
    if (this.#expected.digest !== undefined) {
      checkDigest(
        this.#path,
        { digest: this.#expected.digest, size: this.#expected.size },
        actual,
        OPERATION,
      );
    }
    this.#result = actual;
  }
}

function aborted(signal: AbortSignal, cause?: unknown): AbortedError {
  return new AbortedError("import: aborted", { operation: OPERATION, cause: cause ?? signal.reason });
}

function toRecordTarget(d: BlobDescriptor) {
  return { mediaType: d.mediaType, digest: d.digest, size: BigInt(d.size), annotations: {} };
}

function platformOfConfig(config: ociImageSpec.ImageConfig): Platform | undefined {
  if (!config.os || !config.architecture) return undefined;
  const p: Platform = { os: config.os, architecture: config.architecture };
  if (config.variant) p.variant = config.variant;
  return p;
}

function normalizeName(name: string): string {
  try {
    return parseImageRef(name).toString();
  } catch {
    return name;
  }
}

/**
 * Import the images of an OCI image layout (tar stream, tar file or directory) or a `docker save`
 * archive. Returns the image records written. A bad archive is a ValidationError, content that does not
 * match its digest a DigestMismatchError, an abort an AbortedError; in every such case nothing is left.
 */
export async function importImage(
  client: ContainerdClient,
  source: ImportSource,
  options: ImportOptions = {},
): Promise<ImportedImage[]> {
  const ac = new AbortController();
  const outer = options.signal;
  const onAbort = () => ac.abort(outer?.reason);
  if (outer?.aborted) throw aborted(outer);
  outer?.addEventListener("abort", onAbort, { once: true });
  const signal = ac.signal;
  const emit = options.onProgress ?? (() => {});

  const leaseId = `berth-import-${randomUUID()}`;
  const expiry = new Date(Date.now() + (options.leaseExpiryMs ?? 3_600_000)).toISOString();
  try {
    await client.leases.create({ id: leaseId, labels: { [GC_EXPIRE_LABEL]: expiry } }, { signal });
  } catch (err) {
    outer?.removeEventListener("abort", onAbort);
    throw err;
  }
  emit({ type: "lease", id: leaseId });
  const undo: (() => Promise<unknown>)[] = [];
  let ok = false;
  try {
    const importer = new Importer(client, leaseId, signal, emit, undo);
    await importer.read(source);
    const roots = await importer.roots(options);
    const images = await importer.finish(roots, options);
    ok = true;
    return images;
  } catch (err) {
    for (const step of undo.reverse()) await step().catch(() => {});
    if (signal.aborted && !(isBerthError(err) && err.code === "Aborted")) throw aborted(signal, err);
    throw err;
  } finally {
    outer?.removeEventListener("abort", onAbort);
    // On failure, collect synchronously so the caller sees a clean store when we return.
    await client.leases.delete({ id: leaseId, sync: !ok }).catch((err: BerthError) => {
      if (ok) throw err;
    });
  }
}

class Importer {
  readonly #client: ContainerdClient;
  readonly #leaseId: string;
  readonly #leased: ContainerdClient;
  readonly #signal: AbortSignal;
  readonly #emit: (e: ImportEvent) => void;
  readonly #undo: (() => Promise<unknown>)[];

  #layoutVersion: string | undefined;
  #index: Uint8Array | undefined;
  #dockerManifest: Uint8Array | undefined;
  /** Every regular file, by its cleaned path. */
  readonly #files = new Map<string, ArchiveFile>();
  /** Link name → target path. */
  readonly #links = new Map<string, string>();
  /** Blobs known to be in the store (this namespace) and held by the lease. */
  readonly #stored = new Set<string>();
  /** Blobs that were in the namespace before the import. */
  readonly #preexisting = new Set<string>();
  /** Digest → path of the files held in memory. */
  readonly #inMemory = new Map<string, string>();
  #buffered = 0;

  constructor(
    client: ContainerdClient,
    leaseId: string,
    signal: AbortSignal,
    emit: (e: ImportEvent) => void,
    undo: (() => Promise<unknown>)[],
  ) {
    this.#client = client;
    this.#leaseId = leaseId;
    this.#leased = client.withLease(leaseId);
    this.#signal = signal;
    this.#emit = emit;
    this.#undo = undo;
  }

  get #call() {
    return { signal: this.#signal };
  }

  async #hold(digest: string): Promise<void> {
    await this.#client.leases.addResource(
      { id: this.#leaseId, resource: { id: digest, type: "content" } },
      this.#call,
    );
  }

  // ---- phase 1: stream every file of the archive in ----------------------------------------------------

  async read(source: ImportSource): Promise<void> {
    let entries = 0;
    for await (const entry of archiveEntries(source, this.#signal)) {
      if (this.#signal.aborted) throw aborted(this.#signal);
      if (++entries > MAX_ENTRIES) throw invalid(`more than ${MAX_ENTRIES} entries in the archive`);
      const path = entry.name;
      if (entry.type === "symlink") {
        const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
        this.#links.set(
          path,
          cleanName(entry.linkName.startsWith("/") ? entry.linkName : `${dir}/${entry.linkName}`),
        );
        continue;
      }
      if (entry.type === "hardlink") {
        this.#links.set(path, cleanName(entry.linkName));
        continue;
      }
      if (entry.type !== "file") continue;
      if (path === OCI_LAYOUT_FILE || path === OCI_INDEX_FILE || path === DOCKER_MANIFEST_FILE) {
        if (entry.size > MAX_METADATA_BYTES) throw invalid(`${path} is ${entry.size} bytes`);
        const bytes = await collect(entry.body, entry.size, path);
        if (path === OCI_LAYOUT_FILE) {
          this.#layoutVersion =
            parseJson<ociImageSpec.ImageLayout>(bytes, path).imageLayoutVersion ?? "(missing)";
        } else if (path === OCI_INDEX_FILE) this.#index = bytes;
        else this.#dockerManifest = bytes;
        continue;
      }
      const digest = digestOfBlobPath(path);
      if (
        digest === undefined &&
        entry.size <= SMALL_FILE_BYTES &&
        this.#buffered + entry.size <= MAX_BUFFERED_BYTES
      ) {
        const bytes = await collect(entry.body, entry.size, path);
        const v = new VerifiedBody(path, [bytes], { digest: undefined, size: entry.size }, this.#signal);
        const { digest: computed } = await v.result();
        this.#buffered += bytes.byteLength;
        this.#files.set(path, { digest: computed, size: entry.size, head: bytes.subarray(0, 8), bytes });
        this.#inMemory.set(computed, path);
        continue;
      }
      const body = new VerifiedBody(path, entry.body, { digest, size: entry.size }, this.#signal);
      this.#files.set(path, await this.#ingest(path, body));
    }
  }

  /** Stream one archive file into the content store, verified; returns what it turned out to be. */
  async #ingest(path: string, body: VerifiedBody): Promise<ArchiveFile> {
    const { digest, size } = body.expected;
    if (digest !== undefined && (this.#stored.has(digest) || (await hasBlob(this.#client, digest)))) {
      // Present already: hold it, but still read the bytes, so a bad archive is refused all the same.
      if (!this.#stored.has(digest)) this.#preexisting.add(digest);
      await this.#hold(digest);
      this.#stored.add(digest);
      const result = await body.result();
      this.#emit({ type: "blob-done", path, digest: result.digest, size, written: 0 });
      return { ...result, head: body.head };
    }
    const { written } = await writeBlob(this.#leased, async (offset) => body.bytes(offset), {
      // A ref of our own: a resumed ingest would skip bytes we must hash anyway.
      ref: `berth-import-${randomUUID()}`,
      digest: digest ?? "",
      size,
      signal: this.#signal,
      onProgress: (offset) => this.#emit({ type: "blob-progress", path, digest, offset, size }),
    });
    const result = await body.result();
    // Committing content the namespace already had answers "already exists" and joins no lease: hold it.
    await this.#hold(result.digest);
    this.#stored.add(result.digest);
    this.#emit({ type: "blob-done", path, digest: result.digest, size, written });
    return { ...result, head: body.head };
  }

  /** Make sure an archive file is in the store (small files were held in memory) and return it. */
  async #store(path: string, what: string): Promise<ArchiveFile> {
    const file = this.#file(path);
    if (!file) throw invalid(`${what} ${JSON.stringify(path)} is not in the archive`);
    if (file.bytes) {
      const bytes = file.bytes;
      Object.assign(
        file,
        await this.#ingest(
          path,
          new VerifiedBody(path, [bytes], { digest: file.digest, size: file.size }, this.#signal),
        ),
      );
      file.bytes = undefined;
      this.#inMemory.delete(file.digest);
    }
    return file;
  }

  /** A file of the archive by path; links (of the file or of a directory on its way) are followed inside
   *  the archive, never outside it (their targets were cleaned: `..` stops at the root). */
  #file(path: string): ArchiveFile | undefined {
    let parts = cleanName(path).split("/");
    for (let hops = 0; hops <= MAX_LINK_HOPS; hops++) {
      const at = parts.findIndex((_, i) => this.#links.has(parts.slice(0, i + 1).join("/")));
      if (at === -1) return this.#files.get(parts.join("/"));
      const target = this.#links.get(parts.slice(0, at + 1).join("/")) as string;
      parts = cleanName([target, ...parts.slice(at + 1)].join("/")).split("/");
    }
    throw invalid(`${path}: more than ${MAX_LINK_HOPS} symlinks (a loop?)`);
  }

  /** A document of the image (index, manifest, config) from the store: at most its kind's maxBytes and no
   *  more than its descriptor says, of the shape berth reads. */
  async #document<T>(d: { digest: string; size: number }, kind: DocumentKind<T>): Promise<T> {
    if (d.size > kind.maxBytes) throw invalid(`${d.digest} is ${d.size} bytes, more than ${kind.maxBytes}`);
    try {
      return await readDocument(this.#client, d.digest, d.size, kind.check, invalid, this.#signal);
    } catch (err) {
      if (isBerthError(err) && err.code === "Protocol") {
        throw invalid(`${d.digest} is larger than the ${d.size} bytes its descriptor says`);
      }
      throw err;
    }
  }

  /** Write a document made here (a Docker manifest) into the store. */
  async #writeDocument(path: string, bytes: Uint8Array): Promise<ArchiveFile> {
    const { hash } = hasher(undefined);
    const digest = `sha256:${hash.update(bytes).digest("hex")}`;
    return this.#ingest(
      path,
      new VerifiedBody(path, [bytes], { digest, size: bytes.byteLength }, this.#signal),
    );
  }

  /** Is the blob in the store now (the archive's or the namespace's)? Holds it when it is. */
  async #present(digest: string): Promise<boolean> {
    if (this.#stored.has(digest)) return true;
    const path = this.#inMemory.get(digest);
    if (path !== undefined) {
      await this.#store(path, "blob");
      return true;
    }
    if (!(await hasBlob(this.#client, digest))) return false;
    await this.#hold(digest);
    this.#stored.add(digest);
    this.#preexisting.add(digest);
    return true;
  }

  // ---- phase 2: which images the archive holds ---------------------------------------------------------

  async roots(options: ImportOptions): Promise<RootImage[]> {
    let roots: RootImage[];
    if (this.#layoutVersion !== undefined || (this.#index && !this.#dockerManifest)) {
      if (this.#layoutVersion !== undefined && this.#layoutVersion !== OCI_LAYOUT_VERSION) {
        throw invalid(`unsupported OCI layout version ${JSON.stringify(this.#layoutVersion)}`);
      }
      roots = this.#ociRoots(options);
    } else if (this.#dockerManifest) {
      roots = await this.#dockerRoots();
    } else {
      throw invalid(
        "neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)",
      );
    }
    if (options.name !== undefined) {
      const targets = new Set(roots.map((r) => r.descriptor.digest));
      if (targets.size !== 1) {
        throw invalid(`the archive holds ${targets.size} images; a name can be given to one only`);
      }
      return [{ name: options.name, descriptor: (roots[0] as RootImage).descriptor }];
    }
    const named = roots.filter((r) => r.name !== undefined);
    if (named.length === 0) {
      throw invalid(
        roots.some((r) => r.descriptor.annotations?.[ANNOTATION_REF_NAME])
          ? "the archive names its images by tag only: pass baseName (or name)"
          : "the archive names no image: pass name",
      );
    }
    return named;
  }

  #ociRoots(options: ImportOptions): RootImage[] {
    if (!this.#index) throw invalid(`an OCI image layout without ${OCI_INDEX_FILE}`);
    const index = parseDocument(this.#index, OCI_INDEX_FILE, INDEX_DOCUMENT.check, invalid);
    return index.manifests.map((m) => {
      const annotations = m.annotations ?? {};
      let name = annotations[ANNOTATION_IMAGE_NAME];
      const refName = annotations[ANNOTATION_REF_NAME];
      if (name === undefined && refName !== undefined) {
        if (!isBareTag(refName)) name = refName;
        else if (options.baseName !== undefined) name = `${options.baseName}:${refName}`;
      }
      return {
        name: name === undefined ? undefined : normalizeName(name),
        descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.size, annotations },
      };
    });
  }

  /** A Docker schema 2 manifest for each manifest.json entry, written into the store. */
  async #dockerRoots(): Promise<RootImage[]> {
    const entries = parseJson<DockerSaveManifest[]>(this.#dockerManifest as Uint8Array, DOCKER_MANIFEST_FILE);
    if (!Array.isArray(entries)) throw invalid(`${DOCKER_MANIFEST_FILE} is not a list`);
    const roots: RootImage[] = [];
    for (const [n, entry] of entries.entries()) {
      const what = `${DOCKER_MANIFEST_FILE}[${n}]`;
      if (typeof entry?.Config !== "string" || !Array.isArray(entry.Layers)) {
        throw invalid(`${what} lacks Config or Layers`);
      }
      const tags: unknown = entry.RepoTags ?? [];
      if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
        throw invalid(`${what}.RepoTags is not a list of names`);
      }
      const config = await this.#store(entry.Config, `${what}: config`);
      // docker save names the config file after its digest: hold it to it.
      const named = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(cleanName(entry.Config));
      if (named && `sha256:${named[1]}` !== config.digest) {
        throw new DigestMismatchError(
          `${entry.Config}: content hashes to ${config.digest}`,
          `sha256:${named[1]}`,
          config.digest,
          DETAILS,
        );
      }
      const configJson = await this.#document(config, CONFIG_DOCUMENT);
      const diffIds = configJson.rootfs?.diff_ids ?? [];
      if (diffIds.length !== entry.Layers.length) {
        throw new DigestMismatchError(
          `${what}: the config lists ${diffIds.length} diff IDs for ${entry.Layers.length} layers`,
          String(entry.Layers.length),
          String(diffIds.length),
          DETAILS,
        );
      }
      const layers: ociImageSpec.Descriptor[] = [];
      for (const [i, layerPath] of entry.Layers.entries()) {
        if (typeof layerPath !== "string") throw invalid(`${what}: layer ${i} is not a path`);
        const layer = await this.#store(layerPath, `${what}: layer`);
        const compressed =
          (layer.head[0] === 0x1f && layer.head[1] === 0x8b) ||
          (layer.head[0] === 0x28 &&
            layer.head[1] === 0xb5 &&
            layer.head[2] === 0x2f &&
            layer.head[3] === 0xfd);
        // An uncompressed layer's digest is its diff ID: check it now rather than at unpack.
        if (!compressed && layer.digest !== diffIds[i]) {
          throw new DigestMismatchError(
            `${layerPath}: the layer hashes to ${layer.digest}, the config says ${diffIds[i]}`,
            String(diffIds[i]),
            layer.digest,
            DETAILS,
          );
        }
        layers.push({
          mediaType: layer.head[0] === 0x1f ? LayerMediaType.dockerGzip : LayerMediaType.dockerTar,
          digest: layer.digest,
          size: layer.size,
        });
      }
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, digest: config.digest, size: config.size },
        layers,
      };
      const bytes = Buffer.from(JSON.stringify(manifest));
      const written = await this.#writeDocument(`(manifest of ${what})`, bytes);
      const platform = platformOfConfig(configJson);
      const descriptor: BlobDescriptor = {
        mediaType: MediaType.dockerManifest,
        digest: written.digest,
        size: written.size,
        ...(platform ? { platform } : {}),
      };
      if (tags.length === 0) roots.push({ name: undefined, descriptor });
      for (const tag of tags) roots.push({ name: normalizeName(tag), descriptor });
    }
    return roots;
  }

  // ---- phase 3: walk, label, unpack, record ------------------------------------------------------------

  readonly #walked = new Map<string, ImportedManifest[]>();
  readonly #manifestDocs = new Map<string, { layers: ociImageSpec.Descriptor[]; diffIds: string[] }>();

  async finish(roots: RootImage[], options: ImportOptions): Promise<ImportedImage[]> {
    const manifestsOf = new Map<string, ImportedManifest[]>();
    for (const root of roots) {
      if (!manifestsOf.has(root.descriptor.digest)) {
        manifestsOf.set(root.descriptor.digest, await this.#walk(root.descriptor, options, 0));
      }
    }
    if (options.unpack) {
      const want = options.platform ?? hostPlatform();
      const snapshotter = options.snapshotter ?? DEFAULT_SNAPSHOTTER;
      for (const manifests of manifestsOf.values()) {
        const pick = bestFor(manifests, want);
        if (!pick || pick.chainIds) continue;
        const doc = this.#manifestDocs.get(pick.digest) as {
          layers: ociImageSpec.Descriptor[];
          diffIds: string[];
        };
        pick.chainIds = await unpackLayers(
          this.#client,
          this.#leaseId,
          { configDigest: pick.configDigest, layers: doc.layers, diffIds: doc.diffIds, snapshotter },
          this.#signal,
          (e) => this.#emit(e),
        );
      }
    }
    const images: ImportedImage[] = [];
    const byName = new Map(roots.map((r) => [r.name as string, r]));
    for (const [name, root] of byName) {
      const created = await this.#record(name, root.descriptor);
      const { annotations: _a, ...target } = root.descriptor;
      const image: ImportedImage = {
        name,
        target,
        created,
        manifests: manifestsOf.get(root.descriptor.digest) ?? [],
      };
      this.#emit({ type: "image", image });
      images.push(image);
    }
    return images;
  }

  async #record(name: string, target: BlobDescriptor): Promise<boolean> {
    const image = { name, target: toRecordTarget(target), labels: {} };
    try {
      await this.#client.images.create({ image }, this.#call);
      this.#undo.push(() => this.#client.images.delete({ name }));
      return true;
    } catch (err) {
      if (!(isBerthError(err) && err.code === "Conflict")) throw err;
    }
    const before = (await this.#client.images.get({ name }, this.#call)).image as Image;
    await this.#client.images.update({ image, updateMask: ["target"] }, this.#call);
    this.#undo.push(() => this.#client.images.update({ image: before, updateMask: ["target"] }));
    return false;
  }

  /** Walk an index or manifest: check its children are there, label it with them, return its manifests. */
  async #walk(desc: BlobDescriptor, options: ImportOptions, depth: number): Promise<ImportedManifest[]> {
    const memo = this.#walked.get(desc.digest);
    if (memo) return memo;
    if (!(await this.#present(desc.digest)))
      throw invalid(`the archive lacks ${desc.digest} (${desc.mediaType})`);
    let out: ImportedManifest[];
    if (isIndexMediaType(desc.mediaType)) {
      if (depth >= MAX_INDEX_DEPTH) throw invalid(`indexes nested deeper than ${MAX_INDEX_DEPTH}`);
      const index = await this.#document(desc, INDEX_DOCUMENT);
      const entries = index.manifests;
      let chosen: ociImageSpec.ImageIndex["manifests"];
      if (options.platform) {
        const want = options.platform;
        const present = [];
        for (const m of entries) if (await this.#present(m.digest)) present.push(m);
        const best = selectManifest(present, want);
        if (!best) {
          throw new NotFoundError(
            `import: index ${desc.digest} has no manifest for ${formatPlatform(want)} in the archive`,
            {
              operation: OPERATION,
            },
          );
        }
        chosen = [best];
      } else {
        chosen = [];
        for (const m of entries) if (await this.#present(m.digest)) chosen.push(m);
        if (chosen.length === 0)
          throw invalid(`none of the manifests of index ${desc.digest} is in the archive`);
      }
      const labels: Record<string, string> = {};
      out = [];
      for (const m of chosen) {
        labels[`containerd.io/gc.ref.content.m.${entries.indexOf(m)}`] = m.digest;
        const child: BlobDescriptor = {
          mediaType: m.mediaType,
          digest: m.digest,
          size: m.size,
          platform: m.platform,
        };
        const manifests = await this.#walk(child, options, depth + 1);
        for (const x of manifests) if (!out.includes(x)) out.push(x);
      }
      await this.#label(desc.digest, labels);
    } else if (isManifestMediaType(desc.mediaType)) {
      const manifest = await this.#document(desc, MANIFEST_DOCUMENT);
      if (!(await this.#present(manifest.config.digest))) {
        throw invalid(`the archive lacks config ${manifest.config.digest} of manifest ${desc.digest}`);
      }
      const labels: Record<string, string> = {
        "containerd.io/gc.ref.content.config": manifest.config.digest,
      };
      for (const [i, layer] of manifest.layers.entries()) {
        if (await this.#present(layer.digest)) labels[`containerd.io/gc.ref.content.l.${i}`] = layer.digest;
        // Non-distributable layers (with urls) may be left out of archives.
        else if (!layer.urls?.length)
          throw invalid(`the archive lacks layer ${layer.digest} of manifest ${desc.digest}`);
      }
      const config = await this.#document(manifest.config, CONFIG_DOCUMENT);
      const diffIds = config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== manifest.layers.length) {
        throw new DigestMismatchError(
          `manifest ${desc.digest}: the config lists ${diffIds.length} diff IDs for ${manifest.layers.length} layers`,
          String(manifest.layers.length),
          String(diffIds.length),
          DETAILS,
        );
      }
      this.#manifestDocs.set(desc.digest, { layers: manifest.layers, diffIds });
      await this.#label(desc.digest, labels);
      out = [
        {
          digest: desc.digest,
          configDigest: manifest.config.digest,
          platform: desc.platform ?? platformOfConfig(config),
          chainIds: undefined,
        },
      ];
    } else {
      throw invalid(`${desc.digest}: unsupported media type ${JSON.stringify(desc.mediaType)}`);
    }
    this.#walked.set(desc.digest, out);
    return out;
  }

  /** Set GC reference labels; on blobs that were there before, the ones added are removed on failure. */
  async #label(digest: string, labels: Record<string, string>): Promise<void> {
    const keys = Object.keys(labels);
    if (keys.length === 0) return;
    if (this.#preexisting.has(digest)) {
      const { info } = await this.#client.content.info({ digest }, this.#call);
      const added = keys.filter((k) => info?.labels[k] === undefined);
      if (added.length) {
        this.#undo.push(() =>
          this.#client.content.update({
            info: { digest, labels: {} },
            updateMask: added.map((k) => `labels.${k}`),
          }),
        );
      }
    }
    await this.#client.content.update(
      { info: { digest, labels }, updateMask: keys.map((k) => `labels.${k}`) },
      this.#call,
    );
  }
}

function bestFor(manifests: ImportedManifest[], want: Platform): ImportedManifest | undefined {
  if (manifests.length === 1 && (manifests[0] as ImportedManifest).platform === undefined)
    return manifests[0];
  return selectManifest(manifests, want);
}

async function collect(body: AsyncIterable<Uint8Array>, size: number, path: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.byteLength;
    if (n > size) throw invalid(`${path} is longer than its header says`);
    parts.push(c);
  }
  if (n !== size) throw invalid(`${path}: ${n} bytes, the header said ${size}`);
  return Buffer.concat(parts, n);
}
