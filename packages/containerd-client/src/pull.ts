// Client-side pull into containerd, as containerd's own Go client does it: resolve in the registry, write
// every blob into the content store under a lease (so nothing is collected half-way and everything is
// collected after an abort), label parents with GC references to their children, unpack the layers into
// snapshots, record the image, then drop the lease. With `via: "transfer"` containerd pulls instead, through
// its Transfer service (pull-transfer.ts); the events and the answer are the same.
import { randomUUID } from "node:crypto";
import {
  AbortedError,
  credentialsForImage,
  DigestMismatchError,
  isBerthError,
  ProtocolError,
  parseImageRef,
  ValidationError,
} from "@berth/runtime-core";
import type { ContainerdClient } from "./client.js";
import { readBlob, writeBlob } from "./content.js";
import { chainIds } from "./digest.js";
import type { Descriptor } from "./generated/github.com/containerd/containerd/api/types/descriptor.js";
import type { ociImageSpec } from "./generated/index.js";
import { DEFAULT_SNAPSHOTTER } from "./image.js";
import { createLease, dropLease } from "./lease.js";
import { checkImageConfig, parseDocument } from "./oci/documents.js";
import { transferPull } from "./pull-transfer.js";
import {
  type BlobKind,
  type ContainerdPullOptions,
  type PullEvent,
  type PulledImage,
  REGISTRY_OPTIONS,
} from "./pull-types.js";
import { AsyncQueue } from "./queue.js";
import { type BlobDescriptor, isLoopbackHost, RegistryClient } from "./registry/client.js";

export { GC_EXPIRE_LABEL } from "./lease.js";
export type { BlobKind, ContainerdPullOptions, PullEvent, PulledImage, PullVia } from "./pull-types.js";
/** The content label that records a compressed layer's uncompressed digest (its diff id). */
export const UNCOMPRESSED_LABEL = "containerd.io/uncompressed";

/** Pull and return the image. Unknown image: NotFoundError; refused credentials: UnauthorizedError; a blob
 *  that does not match its digest: DigestMismatchError (with either `via`). */
export async function pull(
  client: ContainerdClient,
  reference: string,
  options: ContainerdPullOptions = {},
): Promise<PulledImage> {
  let image: PulledImage | undefined;
  for await (const e of pullProgress(client, reference, options)) if (e.type === "done") image = e.image;
  if (!image) throw new AbortedError(`pull ${reference}: ended without an image`, { operation: "pull" });
  return image;
}

/**
 * Pull, as an async iterable of progress events; breaking out of the loop aborts the pull. A transfer
 * pull reports what containerd reports: "downloading" only as often as containerd polls its ingests
 * (every 300 ms), and each layer's "layer-unpacked" once containerd has unpacked them all.
 */
export function pullProgress(
  client: ContainerdClient,
  reference: string,
  options: ContainerdPullOptions = {},
): AsyncIterable<PullEvent> {
  return {
    async *[Symbol.asyncIterator]() {
      const ac = new AbortController();
      const outer = options.signal;
      const onAbort = () => ac.abort(outer?.reason);
      if (outer?.aborted) onAbort();
      outer?.addEventListener("abort", onAbort, { once: true });
      const events = new AsyncQueue<PullEvent>();
      let failure: unknown;
      let finished = false;
      const work = pullVia(options.via)(client, reference, options, ac.signal, (e) => events.push(e)).then(
        () => events.close(),
        (err) => {
          failure = err;
          events.close();
        },
      );
      try {
        for await (const e of events) yield e;
        await work;
        finished = true;
        if (failure !== undefined) {
          if (ac.signal.aborted && !(isBerthError(failure) && failure.code === "Aborted")) {
            throw new AbortedError(`pull ${reference}: aborted`, { operation: "pull", cause: failure });
          }
          throw failure;
        }
      } finally {
        outer?.removeEventListener("abort", onAbort);
        if (!finished) {
          ac.abort(new Error("the consumer stopped iterating"));
          await work;
        }
      }
    },
  };
}

/** The pull that `via` names; another value is a ValidationError (thrown where the pull's errors are). */
function pullVia(via: unknown): typeof doPull {
  if (via === undefined || via === "client") return doPull;
  if (via === "transfer") return transferPull;
  return async () => {
    throw new ValidationError(`pull: via must be "client" or "transfer", not ${JSON.stringify(via)}`, {
      operation: "pull",
      backend: "containerd",
    });
  };
}

function toDescriptor(d: BlobDescriptor | ociImageSpec.Descriptor): Partial<Descriptor> {
  return { mediaType: d.mediaType, digest: d.digest, size: BigInt(d.size) };
}

async function doPull(
  client: ContainerdClient,
  reference: string,
  options: ContainerdPullOptions,
  outerSignal: AbortSignal,
  emit: (e: PullEvent) => void,
): Promise<void> {
  // Aborted by the caller, or by us when one of several parallel downloads fails.
  const failed = new AbortController();
  const stop = (reason: unknown) => failed.abort(reason);
  const signal = AbortSignal.any([outerSignal, failed.signal]);
  const ref = parseImageRef(reference);
  // Credentials given for another registry are refused before anything is asked (not only kept back).
  const given = options.credentials;
  if (given && typeof given === "object")
    credentialsForImage(ref, given, { operation: "pull", backend: "containerd" });
  const name = options.name ?? ref.toString();
  const snapshotter = options.snapshotter ?? DEFAULT_SNAPSHOTTER;
  const registry =
    options.registry ??
    new RegistryClient(
      Object.fromEntries(
        REGISTRY_OPTIONS.filter((k) => options[k] !== undefined).map((k) => [k, options[k]]),
      ),
    );
  const resolved = await registry.resolve(ref, {
    signal,
    ...(options.platform ? { platform: options.platform } : {}),
  });
  const { manifest } = resolved;
  emit({
    type: "resolved",
    name,
    digest: resolved.root.descriptor.digest,
    mediaType: resolved.root.descriptor.mediaType,
    manifestDigest: manifest.descriptor.digest,
  });

  const leaseId = await createLease(client, "berth-pull", options.leaseExpiryMs);
  emit({ type: "lease", id: leaseId });
  const leased = client.withLease(leaseId);
  const call = { signal };
  let ok = false;
  try {
    const hold = (id: string, type: string) =>
      client.leases.addResource({ id: leaseId, resource: { id, type } }, call);

    /** Write one blob unless the namespace holds it (writeBlob's first exchange tells, as containerd's
     *  own fetcher finds out: no separate lookup); `data` is asked for the bytes only when they are needed. */
    const store = async (
      kind: BlobKind,
      d: BlobDescriptor | ociImageSpec.Descriptor,
      data: (offset: number) => Promise<AsyncIterable<Uint8Array> | Iterable<Uint8Array>>,
      more: {
        labels?: Record<string, string>;
        /** Reported done only after this (the config before any layer). */
        after?: Promise<unknown>;
        onWritten?: () => void;
      } = {},
    ): Promise<void> => {
      const { labels, after, onWritten } = more;
      const { written, existed } = await writeBlob(leased, data, {
        ref: `berth-${kind}-${d.digest}`,
        digest: d.digest,
        size: d.size,
        signal,
        ...(labels ? { labels } : {}),
        ...(onWritten ? { onWritten } : {}),
        onProgress: (offset) => emit({ type: "blob-progress", kind, digest: d.digest, offset, size: d.size }),
      });
      await after;
      if (existed) {
        await hold(d.digest, "content");
        emit({ type: "blob-exists", kind, digest: d.digest, size: d.size });
      } else {
        emit({ type: "blob-done", kind, digest: d.digest, size: d.size, downloaded: written });
      }
    };
    const inMemory = (bytes: Buffer) => async (offset: number) => [bytes.subarray(offset)];

    // Children before their parents (the manifest, then any index), so each parent's GC labels name
    // content that is already there. The config and the first layers start downloading at once; each
    // layer is unpacked as soon as it and the layers below it are in, so unpacking overlaps with the
    // downloads still running. The config is read here (diff IDs, the image's settings), so it is hashed
    // here; the layers' digests are checked by the content store, which hashes every byte as it writes
    // it and refuses a commit that does not match (hashing them here too would take CPU the daemon needs).
    const configDesc = manifest.json.config;
    const layers = manifest.json.layers;
    let configBytes: Buffer | undefined;
    const configStored = store("config", configDesc, async (offset) => {
      const chunks: Buffer[] = [];
      for await (const c of await registry.fetchBlob(ref, configDesc, { signal, offset })) chunks.push(c);
      if (offset === 0) configBytes = Buffer.concat(chunks);
      return chunks;
    });
    const downloads =
      options.maxConcurrentDownloads ?? (isLoopbackHost(ref.registryHost) ? 1 : LAYER_DOWNLOADS);
    // A download's slot frees once its bytes are in, so the next one overlaps with its commit.
    const fetched = limitConcurrency(Math.max(1, downloads), layers, (layer, release) =>
      store("layer", layer, (offset) => registry.fetchBlob(ref, layer, { signal, offset, hash: false }), {
        after: configStored,
        onWritten: release,
      }),
    );
    for (const f of fetched) f.catch(() => {});
    /** Stop the downloads and wait for them, before the lease (and what they wrote) goes away. */
    const stopAll = async (err: unknown, also?: Promise<unknown>) => {
      stop(err);
      await Promise.allSettled([...fetched, also]);
    };

    let config: ociImageSpec.ImageConfig;
    let diffIds: string[];
    try {
      await configStored;
      // Held already (another pull): read back no more than the manifest says it is (resolve capped that).
      configBytes ??= await readBlob(client, configDesc.digest, signal, configDesc.size);
      config = parseDocument(configBytes, `${ref}: config ${configDesc.digest}`, checkImageConfig, (m) => {
        return new ProtocolError(m, { operation: "pull", backend: "containerd" });
      });
      diffIds = config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== layers.length) {
        throw new DigestMismatchError(
          `${ref}: the config lists ${diffIds.length} diff IDs for ${layers.length} layers`,
          String(layers.length),
          String(diffIds.length),
          { operation: "pull" },
        );
      }
    } catch (err) {
      await stopAll(err);
      throw err;
    }
    const unpacked =
      options.unpack !== false
        ? unpackLayers(
            client,
            leaseId,
            { configDigest: configDesc.digest, layers, diffIds, snapshotter },
            signal,
            emit,
            (i) => fetched[i] as Promise<void>,
          )
        : undefined;
    unpacked?.catch(() => {});
    try {
      await Promise.all(fetched);
    } catch (err) {
      // One download failed: stop the others.
      await stopAll(err, unpacked);
      throw err;
    }

    const manifestLabels: Record<string, string> = {
      "containerd.io/gc.ref.content.config": configDesc.digest,
    };
    layers.forEach((l, i) => {
      manifestLabels[`containerd.io/gc.ref.content.l.${i}`] = l.digest;
    });
    await store("manifest", manifest.descriptor, inMemory(manifest.bytes), { labels: manifestLabels });
    // Indexes from the innermost out; each names the one child we fetched.
    let child = manifest.descriptor.digest;
    for (const index of [...resolved.indexes].reverse()) {
      const entries = (index.json as ociImageSpec.ImageIndex).manifests ?? [];
      const labels: Record<string, string> = {};
      entries.forEach((m, i) => {
        if (m.digest === child) labels[`containerd.io/gc.ref.content.m.${i}`] = m.digest;
      });
      await store("index", index.descriptor, inMemory(index.bytes), { labels });
      child = index.descriptor.digest;
    }

    const chains = chainIds(diffIds);
    await unpacked;

    const target = resolved.root.descriptor;
    const record = { name, target: toDescriptor(target), labels: {} };
    try {
      await client.images.create({ image: record }, call);
    } catch (err) {
      if (!(isBerthError(err) && err.code === "Conflict")) throw err;
      await client.images.update({ image: record, updateMask: ["target"] }, call);
    }
    ok = true;
    emit({
      type: "done",
      image: {
        name,
        target,
        manifestDigest: manifest.descriptor.digest,
        configDigest: configDesc.digest,
        config,
        chainIds: chains,
        snapshotter,
      },
    });
  } finally {
    // On failure, collect synchronously so the caller sees a clean store when we return.
    await dropLease(client, leaseId, ok);
  }
}

/**
 * Unpack a manifest's layers into snapshots under a lease (chains already there are held by the lease,
 * not redone), label each layer blob with its diff ID and the config with the top snapshot, as containerd
 * does, so the snapshots live as long as the image. Shared by pull and import.
 */
export async function unpackLayers(
  client: ContainerdClient,
  leaseId: string,
  image: {
    configDigest: string;
    layers: readonly ociImageSpec.Descriptor[];
    diffIds: readonly string[];
    snapshotter: string;
  },
  signal: AbortSignal,
  emit: (e: Extract<PullEvent, { type: "layer-unpacked" }>) => void = () => {},
  /** Resolves once layer i's blob is in the content store (default: all already are). */
  ready: (i: number) => Promise<void> = () => Promise.resolve(),
): Promise<string[]> {
  const { configDigest, layers, diffIds, snapshotter } = image;
  const leased = client.withLease(leaseId);
  const call = { signal };
  const chains = chainIds(diffIds);
  // The labels go on while the next layer unpacks; all are on before this returns.
  const labelled: Promise<unknown>[] = [];
  try {
    for (const [i, layer] of layers.entries()) {
      const chainId = chains[i] as string;
      const parent = i > 0 ? (chains[i - 1] as string) : "";
      let existed = true;
      await ready(i);
      try {
        await client.snapshots.stat({ snapshotter, key: chainId }, call);
        await client.leases.addResource(
          { id: leaseId, resource: { id: chainId, type: `snapshots/${snapshotter}` } },
          call,
        );
      } catch (err) {
        if (!(isBerthError(err) && err.code === "NotFound")) throw err;
        existed = false;
        await unpackLayer(leased, snapshotter, layer, diffIds[i] as string, chainId, parent, signal);
      }
      labelled.push(
        client.content.update(
          {
            info: { digest: layer.digest, labels: { [UNCOMPRESSED_LABEL]: diffIds[i] as string } },
            updateMask: [`labels.${UNCOMPRESSED_LABEL}`],
          },
          call,
        ),
      );
      emit({ type: "layer-unpacked", digest: layer.digest, chainId, existed });
    }
    const top = chains[chains.length - 1];
    if (top) {
      const label = `containerd.io/gc.ref.snapshot.${snapshotter}`;
      labelled.push(
        client.content.update(
          { info: { digest: configDigest, labels: { [label]: top } }, updateMask: [`labels.${label}`] },
          call,
        ),
      );
    }
    await Promise.all(labelled);
  } catch (err) {
    await Promise.allSettled(labelled);
    throw err;
  }
  return chains;
}

async function unpackLayer(
  leased: ContainerdClient,
  snapshotter: string,
  layer: ociImageSpec.Descriptor,
  diffId: string,
  chainId: string,
  parent: string,
  signal: AbortSignal,
): Promise<void> {
  const key = `extract-${randomUUID()} ${chainId}`;
  const call = { signal };
  const { mounts } = await leased.snapshots.prepare({ snapshotter, key, parent }, call);
  let committed = false;
  try {
    const { applied } = await leased.diff.apply({ diff: toDescriptor(layer), mounts }, call);
    if (applied?.digest !== diffId) {
      throw new DigestMismatchError(
        `layer ${layer.digest} unpacked to ${applied?.digest}, the config says ${diffId}`,
        diffId,
        applied?.digest ?? "",
        { operation: "Diff.Apply" },
      );
    }
    await leased.snapshots.commit({ snapshotter, name: chainId, key }, call);
    committed = true;
  } catch (err) {
    // Another pull may have committed the same chain meanwhile: that is fine.
    if (isBerthError(err) && err.code === "Conflict" && /already exists/.test(err.message)) {
      committed = false;
    } else {
      throw err;
    }
  } finally {
    if (!committed) await leased.snapshots.remove({ snapshotter, key }).catch(() => {});
  }
}

/** Layer downloads a pull runs at once from a remote registry (containerd's default). */
const LAYER_DOWNLOADS = 3;

/** Run `fn` over `items` with at most `limit` at a time; one promise per item, in order. An item's slot
 *  is free when its promise settles, or earlier when it calls `release`. */
function limitConcurrency<T>(
  limit: number,
  items: readonly T[],
  fn: (item: T, release: () => void) => Promise<void>,
): Promise<void>[] {
  let running = 0;
  const queue: Array<() => void> = [];
  return items.map(
    (item) =>
      new Promise<void>((resolve, reject) => {
        const go = () => {
          running++;
          let held = true;
          const release = () => {
            if (!held) return;
            held = false;
            running--;
            queue.shift()?.();
          };
          fn(item, release).then(resolve, reject).finally(release);
        };
        if (running < limit) go();
        else queue.push(go);
      }),
  );
}
