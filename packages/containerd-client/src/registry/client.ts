// A small OCI distribution client: resolve a reference to a manifest, pick a platform from an index, and
// stream blobs with their digest and size checked. Bearer-token and Basic auth; credentials never follow a
// redirect to another host; plain HTTP only for loopback hosts and hosts the caller marks insecure.
import { createHash } from "node:crypto";
import {
  AbortedError,
  type BerthError,
  DaemonError,
  DigestMismatchError,
  type ImageRef,
  NotFoundError,
  ProtocolError,
  parseImageRef,
  type RegistryCredentials,
  resolveCredentials,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from "@berth/runtime-core";
import { type Dispatcher, request } from "undici";
import type { ociImageSpec } from "../generated/index.js";
import { type AuthChallenge, parseWwwAuthenticate } from "./auth.js";
import { isIndexMediaType, MANIFEST_ACCEPT } from "./media-types.js";
import { formatPlatform, hostPlatform, type Platform, selectManifest } from "./platform.js";

/** A content descriptor as registries and containerd name content. */
export interface BlobDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string> | undefined;
  platform?: Platform | undefined;
}

export interface RegistryClientOptions {
  /** Credentials to use, or a function asked per registry; default: runtime-core's resolveCredentials. */
  credentials?: RegistryCredentials | ((registry: string) => Promise<RegistryCredentials | undefined>) | null;
  /** Hosts ("myreg:5000") that may be spoken to over plain HTTP besides loopback addresses. */
  insecureRegistries?: readonly string[];
  dispatcher?: Dispatcher;
  userAgent?: string;
  /** Largest manifest or index accepted (default 8 MiB). */
  maxManifestBytes?: number;
}

export interface FetchedManifest {
  descriptor: BlobDescriptor;
  bytes: Buffer;
  /** The parsed JSON: an image manifest or an index. */
  json: ociImageSpec.ImageManifest | ociImageSpec.ImageIndex;
}

export interface ResolvedImage {
  ref: ImageRef;
  /** What the reference names: an index or a manifest. */
  root: FetchedManifest;
  /** The platform's manifest (same as root when the reference names a manifest). */
  manifest: FetchedManifest & { json: ociImageSpec.ImageManifest };
  /** Every index walked from root to the manifest (empty for a single-manifest image). */
  indexes: FetchedManifest[];
}

const OPERATION = "registry";
const MAX_REDIRECTS = 5;

/** Loopback hosts are the only ones spoken to over plain HTTP unless marked insecure. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function basic(creds: RegistryCredentials): string | undefined {
  if (creds.username === undefined && creds.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${creds.username ?? ""}:${creds.password ?? ""}`).toString("base64")}`;
}

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
  url: URL;
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

export class RegistryClient {
  readonly #options: RegistryClientOptions;
  /** Bearer tokens by "host scope". */
  readonly #tokens = new Map<string, string>();
  readonly #creds = new Map<string, Promise<RegistryCredentials | undefined>>();

  constructor(options: RegistryClientOptions = {}) {
    this.#options = options;
  }

  /** Resolve a reference to its manifest, choosing from an index by platform (default: this host). */
  async resolve(
    reference: string | ImageRef,
    options: { platform?: Platform; signal?: AbortSignal } = {},
  ): Promise<ResolvedImage> {
    const ref = typeof reference === "string" ? parseImageRef(reference) : reference;
    const platform = options.platform ?? hostPlatform();
    const root = await this.fetchManifest(ref, ref.reference, options.signal);
    const indexes: FetchedManifest[] = [];
    let current = root;
    for (let depth = 0; isIndexMediaType(current.descriptor.mediaType); depth++) {
      if (depth > 4) throw new ProtocolError(`${ref}: indexes nested too deep`, { operation: OPERATION });
      indexes.push(current);
      const index = current.json as ociImageSpec.ImageIndex;
      const entry = selectManifest(index.manifests ?? [], platform);
      if (!entry) {
        const have = (index.manifests ?? [])
          .map((m) => (m.platform ? formatPlatform(m.platform) : "unknown"))
          .join(", ");
        throw new NotFoundError(
          `${ref}: no manifest for platform ${formatPlatform(platform)} (index has: ${have || "none"})`,
          { operation: OPERATION },
        );
      }
      current = await this.fetchManifest(ref, entry.digest, options.signal);
      if (current.descriptor.size !== entry.size) {
        throw new DigestMismatchError(
          `${ref}: manifest ${entry.digest} is ${current.descriptor.size} bytes, the index says ${entry.size}`,
          entry.digest,
          current.descriptor.digest,
          { operation: OPERATION },
        );
      }
      current.descriptor.mediaType = entry.mediaType || current.descriptor.mediaType;
      if (entry.platform) current.descriptor.platform = { ...entry.platform };
      if (entry.annotations) current.descriptor.annotations = entry.annotations;
    }
    const manifest = current as ResolvedImage["manifest"];
    if (!manifest.json.config || !Array.isArray(manifest.json.layers)) {
      throw new ProtocolError(`${ref}: ${manifest.descriptor.digest} is not an image manifest`, {
        operation: OPERATION,
      });
    }
    return { ref, root, manifest, indexes };
  }

  /** GET a manifest or index by tag or digest; its digest is computed and, for a digest, checked. */
  async fetchManifest(ref: ImageRef, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const res = await this.#get(ref, `manifests/${reference}`, { accept: MANIFEST_ACCEPT }, signal);
    const max = this.#options.maxManifestBytes ?? 8 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += chunk.length;
      if (size > max) {
        res.body.destroy();
        throw new ProtocolError(`${ref}: manifest larger than ${max} bytes`, { operation: OPERATION });
      }
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const claimed = header(res, "docker-content-digest");
    const expected = reference.includes(":")
      ? reference
      : claimed?.startsWith("sha256:")
        ? claimed
        : undefined;
    if (expected && expected !== digest) {
      throw new DigestMismatchError(
        `${ref}: manifest ${reference} has digest ${digest}, expected ${expected}`,
        expected,
        digest,
        { operation: OPERATION },
      );
    }
    let json: FetchedManifest["json"];
    try {
      json = JSON.parse(bytes.toString("utf8"));
    } catch {
      throw new ProtocolError(`${ref}: manifest ${reference} is not JSON`, { operation: OPERATION });
    }
    const contentType = header(res, "content-type")?.split(";")[0]?.trim();
    const mediaType =
      json.mediaType ||
      (contentType && contentType !== "application/json" ? contentType : undefined) ||
      ("manifests" in json
        ? "application/vnd.oci.image.index.v1+json"
        : "application/vnd.oci.image.manifest.v1+json");
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes, json };
  }

  /**
   * Stream a blob. The iterable throws DigestMismatchError at the end when the bytes do not match the
   * descriptor's digest or size (and as soon as there are too many bytes), so a consumer that commits only
   * after a complete iteration never commits a bad blob. `offset` asks for the rest of a blob (HTTP Range);
   * then only the size is checked here.
   */
  async fetchBlob(
    ref: ImageRef,
    descriptor: BlobDescriptor,
    options: { signal?: AbortSignal; offset?: number } = {},
  ): Promise<AsyncIterable<Buffer>> {
    const offset = options.offset ?? 0;
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await this.#get(ref, `blobs/${descriptor.digest}`, headers, options.signal);
    const ranged = offset > 0 && res.status === 206;
    const start = ranged ? offset : 0;
    return verified(res.body, descriptor, start, ref.toString());
  }

  async #credentials(registry: string): Promise<RegistryCredentials | undefined> {
    const c = this.#options.credentials;
    if (c === null) return undefined;
    if (c && typeof c === "object") return c;
    let p = this.#creds.get(registry);
    if (!p) {
      p = typeof c === "function" ? c(registry) : resolveCredentials(registry).catch(() => undefined);
      this.#creds.set(registry, p);
    }
    return p;
  }

  #baseUrl(ref: ImageRef): string {
    const host = ref.registryHost;
    const insecure = isLoopbackHost(host) || (this.#options.insecureRegistries ?? []).includes(host);
    return `${insecure ? "http" : "https"}://${host}/v2/${ref.repository}/`;
  }

  /** GET with auth: try with what we have, on 401 answer the challenge once. */
  async #get(
    ref: ImageRef,
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    const url = new URL(path, this.#baseUrl(ref));
    const scope = `repository:${ref.repository}:pull`;
    const tokenKey = `${url.host} ${scope}`;
    let authorization = this.#tokens.get(tokenKey);
    for (let attempt = 0; ; attempt++) {
      const res = await this.#send(url, { ...headers, ...(authorization ? { authorization } : {}) }, signal);
      if (res.status === 401 && attempt === 0) {
        res.body.resume();
        authorization = await this.#answer(ref, res, scope, signal);
        if (authorization.startsWith("Bearer ")) this.#tokens.set(tokenKey, authorization);
        continue;
      }
      if (res.status >= 200 && res.status < 300) return res;
      const text = await res.body.text().catch(() => "");
      throw this.#httpError(ref, res.status, text, path);
    }
  }

  #httpError(ref: ImageRef, status: number, body: string, path: string): BerthError {
    let detail = body.slice(0, 300);
    try {
      const j = JSON.parse(body) as { errors?: { code?: string; message?: string }[] };
      if (j.errors?.length) detail = j.errors.map((e) => `${e.code ?? ""}: ${e.message ?? ""}`).join("; ");
    } catch {}
    const what = path.startsWith("manifests/") ? "manifest" : "blob";
    const d = { operation: OPERATION, status, daemonMessage: detail };
    if (status === 404) return new NotFoundError(`${ref}: ${what} not found (${detail})`, d);
    if (status === 401 || status === 403) {
      return new UnauthorizedError(`${ref}: access denied by ${ref.registryHost} (${detail})`, d);
    }
    return new DaemonError(`${ref}: registry answered ${status} for ${what} (${detail})`, d);
  }

  async #answer(ref: ImageRef, res: Response, scope: string, signal?: AbortSignal): Promise<string> {
    const challenges = parseWwwAuthenticate(header(res, "www-authenticate") ?? "");
    const creds = await this.#credentials(ref.registry);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer) return `Bearer ${await this.#token(ref, bearer, scope, creds, signal)}`;
    if (challenges.some((c) => c.scheme === "basic")) {
      const b = creds && basic(creds);
      if (b) return b;
    }
    throw new UnauthorizedError(
      `${ref}: ${ref.registryHost} requires authentication and no credentials were found`,
      { operation: OPERATION, status: 401 },
    );
  }

  async #token(
    ref: ImageRef,
    challenge: AuthChallenge,
    scope: string,
    creds: RegistryCredentials | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    if (creds?.registryToken) return creds.registryToken;
    const realm = challenge.params.realm;
    if (!realm) throw new ProtocolError(`${ref}: Bearer challenge without a realm`, { operation: OPERATION });
    const url = new URL(realm);
    if (url.protocol !== "https:" && !(url.protocol === "http:" && this.#plainOk(url.host))) {
      throw new ValidationError(`${ref}: refusing token realm ${url.origin} over plain HTTP`, {
        operation: OPERATION,
      });
    }
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    for (const s of (challenge.params.scope ?? scope).split(" ")) url.searchParams.append("scope", s);
    const headers: Record<string, string> = {};
    const b = creds && basic(creds);
    if (b) headers.authorization = b;
    const res = await this.#send(url, headers, signal);
    const text = await res.body.text();
    if (res.status === 401 || res.status === 403) {
      throw new UnauthorizedError(`${ref}: the token service ${url.host} refused the credentials`, {
        operation: OPERATION,
        status: res.status,
        daemonMessage: text.slice(0, 300),
      });
    }
    if (res.status !== 200) {
      throw new DaemonError(`${ref}: the token service ${url.host} answered ${res.status}`, {
        operation: OPERATION,
        status: res.status,
        daemonMessage: text.slice(0, 300),
      });
    }
    const j = JSON.parse(text) as { token?: string; access_token?: string };
    const token = j.token ?? j.access_token;
    if (!token) throw new ProtocolError(`${ref}: the token service sent no token`, { operation: OPERATION });
    return token;
  }

  #plainOk(host: string): boolean {
    return isLoopbackHost(host) || (this.#options.insecureRegistries ?? []).includes(host);
  }

  /** One GET, following redirects by hand so Authorization is dropped when the origin changes. */
  async #send(url: URL, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<Response> {
    let current = url;
    let h = { "user-agent": this.#options.userAgent ?? "berth", ...headers };
    for (let i = 0; i <= MAX_REDIRECTS; i++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(current, {
          method: "GET",
          headers: h,
          ...(signal ? { signal } : {}),
          ...(this.#options.dispatcher ? { dispatcher: this.#options.dispatcher } : {}),
        });
      } catch (err) {
        if (signal?.aborted) {
          throw new AbortedError(`GET ${current.origin}: aborted`, { operation: OPERATION, cause: err });
        }
        throw new UnavailableError(
          `GET ${current.origin}${current.pathname}: ${(err as Error).message ?? String(err)}`,
          { operation: OPERATION, cause: err },
        );
      }
      const location = res.headers.location;
      if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === "string") {
        res.body.resume();
        const next = new URL(location, current);
        if (next.protocol === "http:" && !this.#plainOk(next.host)) {
          throw new ValidationError(`refusing a redirect to plain HTTP ${next.origin}`, {
            operation: OPERATION,
          });
        }
        if (next.origin !== current.origin) {
          const { authorization: _, ...rest } = h as Record<string, string>;
          h = rest as typeof h;
        }
        current = next;
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url: current };
    }
    throw new ProtocolError(`GET ${url.origin}: more than ${MAX_REDIRECTS} redirects`, {
      operation: OPERATION,
    });
  }
}

async function* verified(
  body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown },
  descriptor: BlobDescriptor,
  start: number,
  where: string,
): AsyncGenerator<Buffer> {
  const hash = start === 0 ? createHash("sha256") : undefined;
  let size = start;
  let complete = false;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (size > descriptor.size) {
        throw new DigestMismatchError(
          `${where}: blob ${descriptor.digest} is longer than its ${descriptor.size} bytes`,
          descriptor.digest,
          "(too long)",
          { operation: OPERATION },
        );
      }
      hash?.update(chunk);
      yield chunk;
    }
    complete = true;
  } finally {
    if (!complete) body.destroy();
  }
  if (size !== descriptor.size) {
    throw new DigestMismatchError(
      `${where}: blob ${descriptor.digest} has ${size} bytes, expected ${descriptor.size}`,
      descriptor.digest,
      `(${size} bytes)`,
      { operation: OPERATION },
    );
  }
  if (hash) {
    const actual = `sha256:${hash.digest("hex")}`;
    if (descriptor.digest.startsWith("sha256:") && actual !== descriptor.digest) {
      throw new DigestMismatchError(
        `${where}: blob ${descriptor.digest} has digest ${actual}`,
        descriptor.digest,
        actual,
        { operation: OPERATION },
      );
    }
  }
}
