// A pull that containerd does itself, through its Transfer service (containerd 1.7 and 2.x), as the Go
// client's `client.Transfer(ctx, registry.NewOCIRegistry(...), image.NewStore(...))` does: one Transfer
// call names the source (the reference, with the resolver's settings) and the destination (the image
// record's name, the platform, the snapshotter to unpack into); containerd resolves, downloads, verifies,
// unpacks and records the image. Progress comes back on a stream opened beforehand with the Streaming
// service, and containerd asks for credentials on another, which answers only for the image's registry.
// Everything runs under a lease of ours, as the client-side pull does (pull.ts): once the lease goes, a
// failed or aborted pull has left nothing.
import {
  type BerthError,
  credentialsForImage,
  DigestMismatchError,
  type ImageRef,
  isBerthError,
  parseImageRef,
  type RegistryCredentials,
  resolveCredentials,
  UnauthorizedError,
  UnsupportedError,
  ValidationError,
} from "@berth/runtime-core";
import { classifyDaemonMessage, digestMismatchIn } from "@berth/runtime-core/internal";
import type { ContainerdClient } from "./client.js";
import { Progress } from "./generated/github.com/containerd/containerd/api/types/transfer/progress.js";
import {
  AuthRequest,
  AuthResponse,
} from "./generated/github.com/containerd/containerd/api/types/transfer/registry.js";
import { DEFAULT_SNAPSHOTTER, getImage } from "./image.js";
import { createLease, dropLease } from "./lease.js";
import { authResponse, TransferProgress, TransferType, transferPullRequest } from "./pull-transfer-map.js";
import type { ContainerdPullOptions, PullEvent } from "./pull-types.js";
import { isLoopbackHost } from "./registry/client.js";
import { formatPlatform, hostPlatform } from "./registry/platform.js";
import { type DaemonStream, openStream, packAny, unpackAny } from "./streaming.js";

const WHERE = { operation: "pull", backend: "containerd" } as const;

/**
 * The pull options only the client-side pull can honour. containerd's own resolver does the transfer
 * pull, configured by the hosts directory's hosts.toml files (TLS, mirrors) and by its transfer plugin's
 * configuration (concurrent downloads, unpack platforms); its limits on manifests are its own. Given
 * with via "transfer", they are refused rather than silently dropped.
 */
const CLIENT_SIDE_ONLY = [
  "registry",
  "ca",
  "skipTlsVerify",
  "maxManifestBytes",
  "maxConfigBytes",
  "maxConcurrentDownloads",
] as const;

/** How long containerd has to end the progress stream once the transfer call is over: it ends it as the
 *  call returns, and that is how we know its transfer has stopped writing (also after an abort). */
const STREAM_END_GRACE_MS = 10_000;

/**
 * Whether the daemon serves the Transfer and Streaming services (containerd 1.7 and later; 1.6 has
 * neither), by its plugin list: both registered and initialized.
 */
export async function hasTransferService(
  client: ContainerdClient,
  options: { signal?: AbortSignal } = {},
): Promise<boolean> {
  const grpcPlugin = (id: string) => `type=="io.containerd.grpc.v1",id=="${id}"`;
  const { plugins } = await client.introspection.plugins(
    { filters: [grpcPlugin("transfer"), grpcPlugin("streaming")] },
    options.signal ? { signal: options.signal } : {},
  );
  const ready = (id: string) =>
    plugins.some((p) => p.type === "io.containerd.grpc.v1" && p.id === id && !p.initErr);
  return ready("transfer") && ready("streaming");
}

/** Refuse what the transfer pull cannot do, before anything is asked of the daemon. */
function checkOptions(ref: ImageRef, options: ContainerdPullOptions): void {
  for (const key of CLIENT_SIDE_ONLY) {
    if (options[key] === undefined) continue;
    throw new ValidationError(
      `pull ${ref} via "transfer": ${key} is an option of the client-side pull; containerd's transfer ` +
        "service reads its registry settings from hosts.toml files in a hosts directory (hostsDir)",
      WHERE,
    );
  }
  const given = options.credentials;
  if (!given || typeof given !== "object") return;
  // Credentials given for another registry are refused before anything is asked (not only kept back).
  credentialsForImage(ref, given, WHERE);
  if (given.registryToken && !given.username && !given.password && !given.identityToken) {
    throw new UnsupportedError(
      `pull ${ref} via "transfer": containerd's transfer service takes a username and password or an ` +
        'identity token, not a registry token; pull with via "client"',
      WHERE,
    );
  }
}

/** The caller's credentials for the image's registry, looked up once, when containerd first asks. */
function credentialSource(
  ref: ImageRef,
  credentials: ContainerdPullOptions["credentials"],
): () => Promise<RegistryCredentials | undefined> {
  let found: Promise<RegistryCredentials | undefined> | undefined;
  return () => {
    found ??=
      credentials === null
        ? Promise.resolve(undefined)
        : typeof credentials === "function"
          ? credentials(ref.registry)
          : credentials
            ? Promise.resolve(credentialsForImage(ref, credentials, WHERE))
            : // As the client-side pull: ~/.docker/config.json and its helpers.
              resolveCredentials(ref.registry).catch(() => undefined);
    return found;
  };
}

/** Answer containerd's credential requests until the stream ends. */
async function answerCredentials(
  stream: DaemonStream,
  ref: ImageRef,
  lookUp: () => Promise<RegistryCredentials | undefined>,
): Promise<void> {
  for (;;) {
    const next = await stream.messages.next();
    if (next.done) return;
    const request = unpackAny(next.value, TransferType.authRequest, AuthRequest, "Transfer credentials");
    const answer = authResponse(request.host, ref.registry, await lookUp());
    stream.send(packAny(TransferType.authResponse, AuthResponse, answer));
  }
}

/** Read containerd's progress until it ends the stream, emitting what each message stands for. */
async function readProgress(
  stream: DaemonStream,
  tracker: TransferProgress,
  emit: (e: PullEvent) => void,
): Promise<void> {
  for (;;) {
    const next = await stream.messages.next();
    if (next.done) return;
    for (const e of tracker.read(unpackAny(next.value, TransferType.progress, Progress, "Transfer progress")))
      emit(e);
  }
}

/** Settles when `p` does or after `ms`, whichever is first; never rejects. */
async function settled(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/**
 * containerd's answer as the error the client-side pull gives for the same failure: a blob that did not
 * match its digest (the content store refuses the commit: FAILED_PRECONDITION) is a DigestMismatchError,
 * a registry that refused the credentials or wanted some (containerd words it "pull access denied", or
 * "401 Unauthorized", under NOT_FOUND or UNKNOWN) an UnauthorizedError. A missing image is NOT_FOUND
 * already (a NotFoundError). An unpack its configuration does not allow (INVALID_ARGUMENT "no unpack
 * platforms defined") is an UnsupportedError saying what was asked.
 */
function refineTransferError(err: unknown, ref: ImageRef, unpack: () => string): unknown {
  if (!isBerthError(err) || err.code === "Aborted") return err;
  const text = err.daemonMessage ?? err.message;
  const details = {
    operation: "Transfer.Transfer",
    backend: "containerd",
    status: err.status,
    daemonMessage: err.daemonMessage,
    cause: err,
  };
  const mismatch = digestMismatchIn(text);
  if (mismatch) {
    return new DigestMismatchError(`pull ${ref}: ${text}`, mismatch.expected, mismatch.actual, details);
  }
  if (/no unpack platforms defined/.test(text)) {
    return new UnsupportedError(`pull ${ref} via "transfer": ${unpack()} (${text})`, details);
  }
  const generic = err.code === "NotFound" || err.code === "Daemon";
  if (generic && classifyDaemonMessage(text) === "Unauthorized") {
    return new UnauthorizedError(`pull ${ref}: ${text}`, details);
  }
  return err;
}

/** Pull `reference` through containerd's Transfer service; see pullProgress (pull.ts) for the events. */
export async function transferPull(
  client: ContainerdClient,
  reference: string,
  options: ContainerdPullOptions,
  signal: AbortSignal,
  emit: (e: PullEvent) => void,
): Promise<void> {
  const ref = parseImageRef(reference);
  checkOptions(ref, options);
  if (!(await hasTransferService(client, { signal }))) {
    throw new UnsupportedError(
      `pull ${ref} via "transfer": containerd at ${client.address} has no transfer service (containerd ` +
        '1.7 and later have one, 1.6 does not); pull with via "client"',
      WHERE,
    );
  }
  const name = options.name ?? ref.toString();
  const platform = options.platform ?? hostPlatform();
  const snapshotter = options.snapshotter ?? DEFAULT_SNAPSHOTTER;
  const unpack = options.unpack !== false;
  const notUnpacked = () =>
    `containerd does not unpack into ${snapshotter} for ${formatPlatform(platform)}: its transfer ` +
    `plugin's unpack_config does not list them; pull with via "client"`;
  const plainHttp =
    isLoopbackHost(ref.registryHost) || (options.insecureRegistries ?? []).includes(ref.registryHost);

  const leaseId = await createLease(client, "berth-pull", options.leaseExpiryMs);
  emit({ type: "lease", id: leaseId });
  const leased = client.withLease(leaseId);
  // The streams outlive the caller's signal: containerd ends the progress stream once its transfer has
  // returned, and only then is the lease dropped. A stream never ended is the lease's, and goes with it.
  const streams = new AbortController();
  // A message we cannot read, or a credential lookup that fails, stops the transfer.
  const failed = new AbortController();
  const stop = (err: unknown) => {
    if (!failed.signal.aborted) failed.abort(err);
  };
  let progress: DaemonStream | undefined;
  let auth: DaemonStream | undefined;
  let reading: Promise<void> = Promise.resolve();
  let called = false;
  let ok = false;
  try {
    progress = await openStream(leased, "progress", streams.signal);
    if (options.credentials !== null) auth = await openStream(leased, "creds", streams.signal);
    const tracker = new TransferProgress(name);
    reading = readProgress(progress, tracker, emit);
    reading.catch((err) => {
      if (!streams.signal.aborted) stop(err);
    });
    if (auth) {
      answerCredentials(auth, ref, credentialSource(ref, options.credentials)).catch((err) => {
        if (!streams.signal.aborted) stop(err);
      });
    }
    const request = transferPullRequest({
      reference: ref.toString(),
      name,
      platform,
      unpackInto: unpack ? snapshotter : undefined,
      hostsDir: options.hostsDir,
      defaultScheme: plainHttp ? "http" : undefined,
      authStream: auth?.id,
      progressStream: progress.id,
    });
    called = true;
    try {
      await leased.transfer.transfer(request, { signal: AbortSignal.any([signal, failed.signal]) });
    } catch (err) {
      if (failed.signal.aborted && !signal.aborted) throw failed.signal.reason;
      throw refineTransferError(err, ref, notUnpacked);
    }
    await settled(reading, STREAM_END_GRACE_MS);
    if (failed.signal.aborted) throw failed.signal.reason;

    // Read back what containerd recorded: the client-side pull's answer, and proof of the unpack, which
    // containerd may skip with only a warning in its log for an unpack its transfer plugin's unpack_config
    // does not list (2.1 refuses the transfer when none of those asked for is listed).
    const info = await getImage(client, name, { platform, signal });
    const top = info.chainIds[info.chainIds.length - 1];
    if (unpack && top) {
      await client.snapshots.stat({ snapshotter, key: top }, { signal }).catch((err: BerthError) => {
        if (err.code !== "NotFound") throw err;
        throw new UnsupportedError(
          `pull ${ref} via "transfer": ${notUnpacked()} (the image ${name} is recorded, not unpacked)`,
          WHERE,
        );
      });
    }
    // containerd does not report unpacking: each layer is reported once all are in. `existed`: its blob
    // was in the store already (containerd does not say whether it found the snapshot or made it).
    if (unpack) {
      info.manifest.layers.forEach((layer, i) => {
        const chainId = info.chainIds[i] as string;
        const existed = tracker.existed.has(layer.digest);
        emit({ type: "layer-unpacked", digest: layer.digest, chainId, existed });
      });
    }
    const target = info.record.target!; // getImage refuses a record without one
    ok = true;
    emit({
      type: "done",
      image: {
        name,
        target: { mediaType: target.mediaType, digest: target.digest, size: Number(target.size) },
        manifestDigest: info.manifestDigest,
        configDigest: info.configDigest,
        config: info.config,
        chainIds: info.chainIds,
        snapshotter,
      },
    });
  } finally {
    if (called) await settled(reading, STREAM_END_GRACE_MS);
    streams.abort();
    progress?.close();
    auth?.close();
    await dropLease(client, leaseId, ok);
  }
}
