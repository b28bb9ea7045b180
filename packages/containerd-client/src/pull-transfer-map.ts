// Pure translation for the pull that containerd does itself (pull-transfer.ts): berth's pull options as
// the Transfer request (an OCI registry source, an image store destination, both as Anys), the daemon's
// progress messages as berth's PullEvents, and the answer to a credential request. No I/O.
import type { DeepPartial } from "@berth/grpc";
import { isDigest, type RegistryCredentials, registryOf } from "@berth/runtime-core";
import type { TransferRequest } from "./generated/github.com/containerd/containerd/api/services/transfer/v1/transfer.js";
import { ImageStore } from "./generated/github.com/containerd/containerd/api/types/transfer/imagestore.js";
import type { Progress } from "./generated/github.com/containerd/containerd/api/types/transfer/progress.js";
import {
  type AuthResponse,
  AuthType,
  OCIRegistry,
} from "./generated/github.com/containerd/containerd/api/types/transfer/registry.js";
import type { BlobKind, PullEvent } from "./pull-types.js";
import { isIndexMediaType, isManifestMediaType, MediaType } from "./registry/media-types.js";
import type { Platform } from "./registry/platform.js";
import { packAny } from "./streaming.js";

/** The Anys' type URLs: containerd's typeurl names a message by its full proto name, and the transfer
 *  service looks its source and destination types up by exactly that. */
export const TransferType = {
  ociRegistry: "containerd.types.transfer.OCIRegistry",
  imageStore: "containerd.types.transfer.ImageStore",
  progress: "containerd.types.transfer.Progress",
  authRequest: "containerd.types.transfer.AuthRequest",
  authResponse: "containerd.types.transfer.AuthResponse",
} as const;

export interface TransferPullRequest {
  /** The normalized reference containerd resolves ("127.0.0.1:5000/busybox:latest"). */
  reference: string;
  /** The image record's name. */
  name: string;
  platform: Platform;
  /** The snapshotter to unpack into, or undefined for no unpack. */
  unpackInto: string | undefined;
  /** containerd's registry hosts directory (hosts.toml files), read by the daemon. */
  hostsDir?: string | undefined;
  /** "http" for a registry spoken to in plain HTTP. */
  defaultScheme?: string | undefined;
  /** The stream the daemon asks for credentials on, if any. */
  authStream?: string | undefined;
  progressStream: string;
}

/**
 * The Transfer request of a pull, as containerd's Go client builds it from `registry.NewOCIRegistry` and
 * `image.NewStore(name, image.WithPlatforms(p), image.WithUnpack(p, snapshotter))`. Only the one
 * platform's manifest is fetched (`ctr` also fetches every platform's manifest and config, with
 * WithAllMetadata; berth's client-side pull does not), and one manifest at most when several match.
 */
export function transferPullRequest(r: TransferPullRequest): DeepPartial<TransferRequest> {
  const platform = {
    os: r.platform.os,
    architecture: r.platform.architecture,
    variant: r.platform.variant ?? "",
  };
  const source = packAny(TransferType.ociRegistry, OCIRegistry, {
    reference: r.reference,
    resolver: {
      authStream: r.authStream ?? "",
      headers: {},
      hostDir: r.hostsDir ?? "",
      defaultScheme: r.defaultScheme ?? "",
      httpDebug: 0,
      logsStream: "",
    },
  });
  const destination = packAny(TransferType.imageStore, ImageStore, {
    name: r.name,
    labels: {},
    platforms: [platform],
    allMetadata: false,
    manifestLimit: 1,
    extraReferences: [],
    unpacks: r.unpackInto === undefined ? [] : [{ platform, snapshotter: r.unpackInto }],
  });
  return { source, destination, options: { progressStream: r.progressStream } };
}

/** What a blob is, by its media type (containerd's progress names say it too, but less reliably). */
export function blobKind(mediaType: string): BlobKind {
  if (isIndexMediaType(mediaType)) return "index";
  if (isManifestMediaType(mediaType)) return "manifest";
  if (mediaType === MediaType.ociConfig || mediaType === MediaType.dockerConfig) return "config";
  return "layer";
}

interface Blob {
  mediaType: string;
  digest: string;
  size: number;
}

/**
 * containerd's transfer progress as PullEvents. containerd reports per blob: "waiting" when it is found,
 * "downloading" with the bytes in its ingest (polled every 300 ms, so a small blob may never show it),
 * "complete" once committed, "already exists" when the store held it; and free text around them
 * ("Resolving from ...", "saved"). The first blob reported is the root the reference names, the first
 * manifest the one chosen for the platform: "resolved" is reported then. Each blob ends once; a message
 * without a well-formed descriptor is ignored (the daemon's text is not trusted to carry one).
 */
export class TransferProgress {
  #root: Blob | undefined;
  #resolved = false;
  readonly #ended = new Set<string>();
  /** Blobs the content store already held. */
  readonly existed = new Set<string>();

  constructor(readonly name: string) {}

  read(p: Progress): PullEvent[] {
    const d = p.desc;
    if (!d || typeof d.digest !== "string" || !isDigest(d.digest) || typeof d.mediaType !== "string")
      return [];
    const blob: Blob = { mediaType: d.mediaType, digest: d.digest, size: Math.max(0, Number(d.size)) };
    const out: PullEvent[] = [];
    this.#root ??= blob;
    if (!this.#resolved && isManifestMediaType(blob.mediaType)) {
      this.#resolved = true;
      const root = this.#root;
      out.push({
        type: "resolved",
        name: this.name,
        digest: root.digest,
        mediaType: root.mediaType,
        manifestDigest: blob.digest,
      });
    }
    if (this.#ended.has(blob.digest)) return out;
    const kind = blobKind(blob.mediaType);
    const { digest, size } = blob;
    switch (p.event) {
      case "downloading":
        out.push({ type: "blob-progress", kind, digest, offset: Number(p.progress), size });
        break;
      case "complete":
        this.#ended.add(digest);
        out.push({ type: "blob-done", kind, digest, size, downloaded: size });
        break;
      case "already exists":
        this.#ended.add(digest);
        this.existed.add(digest);
        out.push({ type: "blob-exists", kind, digest, size });
        break;
    }
    return out;
  }
}

/**
 * The answer to the daemon's request for credentials for `host`: the caller's credentials only when
 * `host` is the image's registry (a mirror a hosts.toml names, or any other host, gets none, as
 * credentialsForImage rules for every backend), as a username and password or an identity token.
 * containerd 2.1's transfer service drops a HEADER answer, so a bare registry token is not offered.
 */
export function authResponse(
  host: string,
  imageRegistry: string,
  credentials: RegistryCredentials | undefined,
): Partial<AuthResponse> {
  const none = { authType: AuthType.NONE };
  const registry = registryOf(imageRegistry);
  if (!credentials || registryOf(host) !== registry) return none;
  if (registryOf(credentials.serverAddress || imageRegistry) !== registry) return none;
  if (credentials.identityToken) {
    return { authType: AuthType.REFRESH, secret: credentials.identityToken };
  }
  if (credentials.username || credentials.password) {
    return {
      authType: AuthType.CREDENTIALS,
      username: credentials.username ?? "",
      secret: credentials.password ?? "",
    };
  }
  return none;
}
