// The types of a pull (its options, events and answer), apart from the code that pulls: pull.ts (the
// client-side pull) and pull-transfer.ts (containerd's Transfer service) both speak them.
import type { ociImageSpec } from "./generated/index.js";
import type { BlobDescriptor, RegistryClient, RegistryClientOptions } from "./registry/client.js";
import type { Platform } from "./registry/platform.js";

/** What a blob of an image is. */
export type BlobKind = "index" | "manifest" | "config" | "layer";

/** One step of a pull, as pullProgress() yields it; `done` comes last. */
export type PullEvent =
  /** The reference was resolved. */
  | {
      /** Always "resolved". */
      type: "resolved";
      /** The image record's name. */
      name: string;
      /** The digest the reference points at (an index or a manifest). */
      digest: string;
      /** Its media type. */
      mediaType: string;
      /** The digest of the manifest chosen for the platform. */
      manifestDigest: string;
    }
  /** The lease that holds the pull's content until it is done. */
  | {
      /** Always "lease". */
      type: "lease";
      /** The lease id. */
      id: string;
    }
  /** The blob was already in the content store: nothing to download. */
  | {
      /** Always "blob-exists". */
      type: "blob-exists";
      /** What the blob is. */
      kind: BlobKind;
      /** Its digest. */
      digest: string;
      /** Its size in bytes. */
      size: number;
    }
  /** Bytes of a blob have been written. */
  | {
      /** Always "blob-progress". */
      type: "blob-progress";
      /** What the blob is. */
      kind: BlobKind;
      /** Its digest. */
      digest: string;
      /** Bytes written so far. */
      offset: number;
      /** Its size in bytes. */
      size: number;
    }
  /** Committed; `downloaded` is 0 when the daemon already held the bytes (content is shared by namespaces). */
  | {
      /** Always "blob-done". */
      type: "blob-done";
      /** What the blob is. */
      kind: BlobKind;
      /** Its digest. */
      digest: string;
      /** Its size in bytes. */
      size: number;
      /** Bytes fetched from the registry for it. */
      downloaded: number;
    }
  /** A layer was applied to a snapshot (or its snapshot already existed). */
  | {
      /** Always "layer-unpacked". */
      type: "layer-unpacked";
      /** The layer's digest. */
      digest: string;
      /** The chain id of the snapshot it made. */
      chainId: string;
      /** Whether the snapshot was there already. */
      existed: boolean;
    }
  /** The pull is done. */
  | {
      /** Always "done". */
      type: "done";
      /** The pulled image. */
      image: PulledImage;
    };

/** What a pull resolves to. */
export interface PulledImage {
  /** The image record's name: the normalized reference. */
  name: string;
  /** The image record's target: the index or manifest the reference names. */
  target: BlobDescriptor;
  /** The digest of the manifest chosen for the platform. */
  manifestDigest: string;
  /** The digest of the image config. */
  configDigest: string;
  /** The image config (entrypoint, env, user, layers' diff ids). */
  config: ociImageSpec.ImageConfig;
  /** The chain id of each layer's snapshot, bottom first (the last is the image's rootfs parent). */
  chainIds: string[];
  /** The snapshotter the layers were unpacked into. */
  snapshotter: string;
}

/** The registry client's options a pull passes on (when it makes the client). */
export const REGISTRY_OPTIONS = [
  "credentials",
  "insecureRegistries",
  "ca",
  "skipTlsVerify",
  "allowLocalRedirects",
  "maxManifestBytes",
  "maxConfigBytes",
] as const;

/**
 * Who pulls. "client" (the default): this process, with berth's registry client; it checks every blob's
 * digest itself (the content store checks them again as it commits them), writes them through
 * containerd's content service and unpacks them through its diff service. "transfer": containerd itself,
 * through its Transfer service (containerd 1.7 and 2.x; on 1.6 an UnsupportedError), with its own
 * resolver, which reads the hosts directory's hosts.toml files (`hostsDir`) and verifies the digests as it
 * commits the blobs. The images, events and errors are the same; a transfer pull takes no `registry`,
 * `ca`, `skipTlsVerify`, `maxManifestBytes`, `maxConfigBytes` or `maxConcurrentDownloads` (a
 * ValidationError: hosts.toml and containerd's configuration decide those), and does not refuse
 * redirects to local addresses as berth's registry client does.
 */
export type PullVia = "client" | "transfer";

/** Options of pull() and pullProgress(): the registry client's, and how the image is stored. */
export interface ContainerdPullOptions
  extends Pick<RegistryClientOptions, (typeof REGISTRY_OPTIONS)[number]> {
  /** Who pulls: this process ("client", the default) or containerd's Transfer service ("transfer"). */
  via?: PullVia;
  /**
   * Transfer pulls: containerd's registry hosts directory (a certs.d of `<host>/hosts.toml` files, as
   * containerd's `config_path`), read by the daemon. Ignored by the client-side pull. Plain HTTP is used
   * for loopback registries and `insecureRegistries` either way.
   */
  hostsDir?: string;
  /** The platform to pull (default: this host's). */
  platform?: Platform;
  /** Unpack layers into snapshots (default true). */
  unpack?: boolean;
  /** The snapshotter to unpack into (default "overlayfs"). */
  snapshotter?: string;
  /** Name of the image record (default: the normalized reference). */
  name?: string;
  /** A registry client to use (default: one made from the registry options above). */
  registry?: RegistryClient;
  /** Cancels the pull: an AbortedError once the signal fires. */
  signal?: AbortSignal;
  /** Lease lifetime, a safety net should this process die mid-pull (default 1 h). */
  leaseExpiryMs?: number;
  /**
   * Layers downloaded at once. Default 3, as containerd, from a remote registry, where parallel
   * connections hide the network's latency; 1 from a registry on this host, which is not limited by a
   * network but by the CPUs that move and write the bytes (the client's and containerd's): one download
   * at a time is then as fast, and the layers arrive in order, each unpacked while the next downloads
   * (three at once all finish together, at the end, and only then can unpacking start).
   */
  maxConcurrentDownloads?: number;
}
