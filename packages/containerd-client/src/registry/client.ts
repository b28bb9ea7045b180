// A small OCI distribution client: resolve a reference to a manifest, pick a platform from an index, and
// stream blobs with their digest and size checked. Bearer-token and Basic auth; credentials go only to the
// registry they name (and the token service it points to), never follow a redirect to another origin, and
// only a challenge from the registry itself is answered; plain HTTP only for loopback hosts and hosts the
// caller marks insecure; TLS certificates are verified except for hosts the caller names. Nothing a
// registry sends is trusted: every body read whole has a cap, every document is checked for its shape,
// and a registry that is not on this host cannot send us (redirect, token realm) to this host's own
// loopback or link-local services.
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { rootCertificates } from "node:tls";
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
  registryOf,
  resolveCredentials,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from "@berth/runtime-core";
import { Agent, type Dispatcher, request } from "undici";
import type { ociImageSpec } from "../generated/index.js";
import {
  checkDescriptor,
  checkIndex,
  checkManifest,
  DEFAULT_MAX_CONFIG_BYTES,
  DEFAULT_MAX_MANIFEST_BYTES,
  isObject,
} from "../oci/documents.js";
import { type AuthChallenge, parseWwwAuthenticate } from "./auth.js";
import { discard, MAX_MESSAGE_BYTES, readable, readCapped, readDetail } from "./body.js";
import { bareHostname, LOCAL_ADDRESS_CODE, localAddressOf, refuseLocalLookup } from "./local-address.js";
import { isIndexMediaType, MANIFEST_ACCEPT } from "./media-types.js";
import { formatPlatform, hostPlatform, type Platform, selectManifest } from "./platform.js";

/** A content descriptor as registries and containerd name content. */
export interface BlobDescriptor {
  /** The content's media type (`application/vnd.oci.image.layer.v1.tar+gzip`...). */
  mediaType: string;
  /** The content's digest, `algorithm:hex` (`sha256:...`). */
  digest: string;
  /** The content's length in bytes. */
  size: number;
  /** The descriptor's annotations, when it has any. */
  annotations?: Record<string, string> | undefined;
  /** The platform an index entry names, for a manifest picked from an index. */
  platform?: Platform | undefined;
}

/** How a RegistryClient finds credentials and which hosts it trusts, and its caps. */
export interface RegistryClientOptions {
  /**
   * Credentials to use, or a function asked per registry; default: runtime-core's resolveCredentials.
   * Credentials given as an object are used only for the registry their `serverAddress` names.
   */
  credentials?: RegistryCredentials | ((registry: string) => Promise<RegistryCredentials | undefined>) | null;
  /** Hosts ("myreg:5000") that may be spoken to over plain HTTP besides loopback addresses. */
  insecureRegistries?: readonly string[];
  /** CA certificates (PEM) trusted besides Node's root store, e.g. a private registry's CA. */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /** Hosts ("myreg:5000") whose TLS certificate is not verified; every other host is still verified. */
  skipTlsVerify?: readonly string[];
  /** Carries every request; then `ca` and `skipTlsVerify` cannot be used (the dispatcher owns TLS). */
  dispatcher?: Dispatcher;
  /** The User-Agent header of every request (default "berth"). */
  userAgent?: string;
  /** Largest manifest or index accepted, in bytes (default 4 MiB, as containerd). */
  maxManifestBytes?: number;
  /** Largest image config accepted, in bytes (default 8 MiB); a manifest naming a larger one is refused. */
  maxConfigBytes?: number;
  /**
   * Let a registry that is not on this host send us, by a redirect or its token realm, to a loopback,
   * link-local or unspecified address (127.0.0.0/8, ::1, 169.254.0.0/16, fe80::/10, 0.0.0.0, ::), names
   * resolving to one included. Default false: such a target is refused with a ValidationError before any
   * request, as a blind GET to this host's own services (cloud metadata, admin endpoints). A registry on
   * this host may always send us anywhere.
   */
  allowLocalRedirects?: boolean;
}

/** A manifest or index as a registry sent it, with the descriptor that names it. */
export interface FetchedManifest {
  /** Its media type, its sha256 digest computed over `bytes` and its size in bytes. */
  descriptor: BlobDescriptor;
  /** The exact bytes received (the digest is over these, not over a re-serialised document). */
  bytes: Buffer;
  /** The parsed JSON: an image manifest or an index. */
  json: ociImageSpec.ImageManifest | ociImageSpec.ImageIndex;
}

/** What RegistryClient.resolve found for a reference: the document it names and the platform's manifest. */
export interface ResolvedImage {
  /** The reference resolved, parsed. */
  ref: ImageRef;
  /** What the reference names: an index or a manifest. */
  root: FetchedManifest;
  /** The platform's manifest (same as root when the reference names a manifest). */
  manifest: FetchedManifest & {
    /** The parsed image manifest. */
    json: ociImageSpec.ImageManifest;
  };
  /** Every index walked from root to the manifest (empty for a single-manifest image). */
  indexes: FetchedManifest[];
}

/** Every error here names the operation and the backend. */
const DETAILS = { operation: "registry", backend: "containerd" } as const;
const protocolError = (message: string) => new ProtocolError(message, DETAILS);
const MAX_REDIRECTS = 5;

/** Loopback hosts are the only ones spoken to over plain HTTP unless marked insecure. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Node's codes for a certificate that failed verification (OpenSSL's X509_V_ERR_* names, and Node's own). */
const TLS_VERIFY_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "CERT_SIGNATURE_FAILURE",
  "CERT_NOT_YET_VALID",
  "CERT_HAS_EXPIRED",
  "CERT_REVOKED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_CHAIN_TOO_LONG",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
  "HOSTNAME_MISMATCH",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** Whether a host list names the URL's host ("myreg" and "myreg:443" both name https://myreg/). */
function names(hosts: readonly string[] | undefined, url: URL): boolean {
  if (!hosts?.length) return false;
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return hosts.includes(url.host) || hosts.includes(`${url.hostname}:${port}`);
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

/**
 * A client of the OCI distribution API for pulling: resolves references to manifests and streams blobs,
 * checking digests and sizes. One instance caches bearer tokens and credentials per registry; it has no
 * state to close. Calls throw berth errors naming the operation "registry": NotFoundError (404, or no
 * manifest for the platform), UnauthorizedError (401/403, or a challenge it has no credentials for),
 * DigestMismatchError, ProtocolError (a malformed or oversized answer), ValidationError (a refused
 * redirect or token realm, a certificate that fails verification, a bad argument), UnavailableError (the
 * registry cannot be reached), AbortedError, and DaemonError for any other status.
 */
export class RegistryClient {
  readonly #options: RegistryClientOptions;
  /** Bearer tokens by "host scope". */
  readonly #tokens = new Map<string, string>();
  readonly #creds = new Map<string, Promise<RegistryCredentials | undefined>>();
  /** Agents by TLS settings and guard (see #dispatcher). */
  readonly #agents = new Map<string, Agent>();
  /** Whether a registry host is on this host (then it may send us to local addresses). */
  readonly #localRegistries = new Map<string, Promise<boolean>>();

  constructor(options: RegistryClientOptions = {}) {
    if (options.dispatcher && (options.ca !== undefined || options.skipTlsVerify?.length)) {
      throw new ValidationError(
        "RegistryClient: give either a dispatcher or ca/skipTlsVerify, not both",
        DETAILS,
      );
    }
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
      if (depth > 4) throw new ProtocolError(`${ref}: indexes nested too deep`, DETAILS);
      indexes.push(current);
      const index = current.json as ociImageSpec.ImageIndex;
      const entry = selectManifest(index.manifests, platform);
      if (!entry) {
        const have = index.manifests
          .map((m) => (m.platform ? formatPlatform(m.platform) : "unknown"))
          .join(", ");
        throw new NotFoundError(
          `${ref}: no manifest for platform ${formatPlatform(platform)} (index has: ${have || "none"})`,
          DETAILS,
        );
      }
      current = await this.fetchManifest(ref, entry.digest, options.signal);
      if (current.descriptor.size !== entry.size) {
        throw new DigestMismatchError(
          `${ref}: manifest ${entry.digest} is ${current.descriptor.size} bytes, the index says ${entry.size}`,
          entry.digest,
          current.descriptor.digest,
          DETAILS,
        );
      }
      current.descriptor.mediaType = entry.mediaType || current.descriptor.mediaType;
      if (entry.platform) current.descriptor.platform = { ...entry.platform };
      if (entry.annotations) current.descriptor.annotations = entry.annotations;
    }
    const manifest = current as ResolvedImage["manifest"];
    // The config is read into memory (pull hashes and parses it): its size is refused before the GET.
    const maxConfig = this.#options.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES;
    if (manifest.json.config.size > maxConfig) {
      throw protocolError(
        `${ref}: manifest ${manifest.descriptor.digest} names a config of ${manifest.json.config.size} bytes, more than ${maxConfig}`,
      );
    }
    return { ref, root, manifest, indexes };
  }

  /** GET a manifest or index by tag or digest; its digest is computed and, for a digest, checked. */
  async fetchManifest(ref: ImageRef, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const res = await this.#get(ref, `manifests/${reference}`, { accept: MANIFEST_ACCEPT }, signal);
    const max = this.#options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    const bytes = await readCapped(res.body, max, `${ref}: manifest ${reference}`, signal);
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
        DETAILS,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString("utf8"));
    } catch {
      throw protocolError(`${ref}: manifest ${reference} is not JSON`);
    }
    const what = `${ref}: manifest ${reference}`;
    if (!isObject(parsed)) throw protocolError(`${what} is not a JSON object`);
    const contentType = header(res, "content-type")?.split(";")[0]?.trim();
    const mediaType =
      (typeof parsed.mediaType === "string" && parsed.mediaType) ||
      (contentType && contentType !== "application/json" ? contentType : undefined) ||
      ("manifests" in parsed
        ? "application/vnd.oci.image.index.v1+json"
        : "application/vnd.oci.image.manifest.v1+json");
    const json = isIndexMediaType(mediaType)
      ? checkIndex(parsed, what, protocolError)
      : checkManifest(parsed, what, protocolError);
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes, json };
  }

  /**
   * Stream a blob. The iterable throws DigestMismatchError at the end when the bytes do not match the
   * descriptor's digest or size (and as soon as there are too many bytes), so a consumer that commits only
   * after a complete iteration never commits a bad blob. `offset` asks for the rest of a blob (HTTP Range);
   * when the registry honours it only the size is checked here (the content store checks the digest at
   * commit); when it sends the whole blob instead, the first `offset` bytes are hashed but not yielded.
   * `hash: false` leaves the digest to a consumer that checks it anyway (containerd's content store hashes
   * every byte it is sent and refuses to commit a mismatch): only the size is checked, and the CPU a second
   * SHA-256 of every byte would cost goes to moving them.
   */
  async fetchBlob(
    ref: ImageRef,
    descriptor: BlobDescriptor,
    options: { signal?: AbortSignal; offset?: number; hash?: boolean } = {},
  ): Promise<AsyncIterable<Buffer>> {
    const offset = options.offset ?? 0;
    // The digest goes into the URL's path: a "digest" such as "../../x" would name another resource.
    checkDescriptor(descriptor, "blob descriptor", (m) => new ValidationError(m, DETAILS));
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > descriptor.size) {
      throw new ValidationError(
        `blob offset ${offset} is not within the blob's ${descriptor.size} bytes`,
        DETAILS,
      );
    }
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await this.#get(ref, `blobs/${descriptor.digest}`, headers, options.signal);
    const ranged = offset > 0 && res.status === 206;
    // A registry may ignore Range and send the whole blob: skip what the caller has, still hashing it all.
    const hash = options.hash !== false && !ranged;
    const where = { name: ref.toString(), signal: options.signal };
    return verified(res.body, descriptor, ranged ? offset : 0, where, ranged ? 0 : offset, hash);
  }

  async #credentials(registry: string): Promise<RegistryCredentials | undefined> {
    const c = this.#options.credentials;
    if (c === null) return undefined;
    // Credentials for one registry are never offered to another.
    if (c && typeof c === "object")
      // Without a serverAddress (a JavaScript caller), they are the image's registry's.
      return registryOf(c.serverAddress || registry) === registryOf(registry) ? c : undefined;
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
      const auth: Record<string, string> = authorization ? { authorization } : {};
      const res = await this.#send(url, { ...headers, ...auth }, signal, ref.registryHost);
      // Only the registry's own challenge is answered: a redirect target (a CDN, another host) that asks
      // for credentials must not get the registry's, nor name a token service that would.
      if (res.status === 401 && attempt === 0 && res.url.origin === url.origin) {
        discard(res.body);
        authorization = await this.#answer(ref, res, scope, signal);
        if (authorization.startsWith("Bearer ")) this.#tokens.set(tokenKey, authorization);
        continue;
      }
      if (res.status >= 200 && res.status < 300) return res;
      const text = await readDetail(res.body);
      throw this.#httpError(ref, res.status, text, path, res.url.host);
    }
  }

  #httpError(ref: ImageRef, status: number, body: string, path: string, host: string): BerthError {
    let detail = body.slice(0, 300);
    try {
      const j: unknown = JSON.parse(body);
      // The registry's error list (distribution spec), when it has that shape; else the body's start.
      const errors = isObject(j) && Array.isArray(j.errors) ? j.errors.filter(isObject) : [];
      const text = (v: unknown) => (typeof v === "string" ? v : "");
      if (errors.length)
        detail = errors
          .map((e) => `${text(e.code)}: ${text(e.message)}`)
          .join("; ")
          .slice(0, 300);
    } catch {}
    const what = path.startsWith("manifests/") ? "manifest" : "blob";
    const d = { ...DETAILS, status, daemonMessage: detail };
    if (status === 404) return new NotFoundError(`${ref}: ${what} not found (${detail})`, d);
    if (status === 401 || status === 403) {
      return new UnauthorizedError(`${ref}: access denied by ${host} (${detail})`, d);
    }
    return new DaemonError(`${ref}: registry answered ${status} for ${what} (${detail})`, d);
  }

  async #answer(ref: ImageRef, res: Response, scope: string, signal?: AbortSignal): Promise<string> {
    const challenges = parseWwwAuthenticate(header(res, "www-authenticate") ?? "");
    const creds = await this.#credentials(ref.registry);
    // Bearer: the registry names its token service, which may be another host (auth.docker.io for
    // registry-1.docker.io); like Docker we send the registry's credentials there (plain HTTP only where
    // the realm's host may be spoken to in plain HTTP), and the token it gives only to the registry.
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer) return `Bearer ${await this.#token(ref, bearer, scope, creds, signal)}`;
    if (challenges.some((c) => c.scheme === "basic")) {
      const b = creds && basic(creds);
      if (b) return b;
    }
    const given = this.#options.credentials;
    const why =
      given && typeof given === "object" && !creds
        ? `the credentials given are for ${given.serverAddress}, and are not sent to another registry`
        : "no credentials were found";
    throw new UnauthorizedError(`${ref}: ${ref.registryHost} requires authentication and ${why}`, {
      ...DETAILS,
      status: 401,
    });
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
    if (!realm) throw new ProtocolError(`${ref}: Bearer challenge without a realm`, DETAILS);
    let url: URL;
    try {
      url = new URL(realm);
    } catch (cause) {
      // The realm comes from the registry's header: a bad one is the registry's protocol error.
      throw new ProtocolError(
        `${ref}: the Bearer challenge's realm ${JSON.stringify(realm.slice(0, 200))} is not a URL`,
        {
          ...DETAILS,
          cause,
        },
      );
    }
    if (url.protocol !== "https:" && !(url.protocol === "http:" && this.#plainOk(url.host))) {
      throw new ValidationError(`${ref}: refusing token realm ${url.origin} over plain HTTP`, DETAILS);
    }
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    for (const s of (challenge.params.scope ?? scope).split(" ")) url.searchParams.append("scope", s);
    const headers: Record<string, string> = {};
    const b = creds && basic(creds);
    if (b) headers.authorization = b;
    const res = await this.#send(url, headers, signal, ref.registryHost);
    const what = `${ref}: the token service ${url.host}'s answer`;
    const text =
      res.status === 200
        ? (await readCapped(res.body, MAX_MESSAGE_BYTES, what, signal)).toString("utf8")
        : await readDetail(res.body);
    if (res.status === 401 || res.status === 403) {
      throw new UnauthorizedError(`${ref}: the token service ${url.host} refused the credentials`, {
        ...DETAILS,
        status: res.status,
        daemonMessage: text.slice(0, 300),
      });
    }
    if (res.status !== 200) {
      throw new DaemonError(`${ref}: the token service ${url.host} answered ${res.status}`, {
        ...DETAILS,
        status: res.status,
        daemonMessage: text.slice(0, 300),
      });
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch {
      // Not quoted: a broken answer from a token service may still carry a token.
      throw protocolError(`${ref}: the token service ${url.host} did not answer JSON`);
    }
    const token = isObject(j) ? j.token || j.access_token : undefined;
    if (typeof token !== "string" || !token) {
      throw new ProtocolError(`${ref}: the token service sent no token`, DETAILS);
    }
    return token;
  }

  #plainOk(host: string): boolean {
    return isLoopbackHost(host) || (this.#options.insecureRegistries ?? []).includes(host);
  }

  /** The dispatcher for a URL: certificate checks off only for a host the caller named; `guarded`: the
   *  connection is refused if the host's name resolves to a local address. */
  #dispatcher(url: URL, guarded: boolean): Dispatcher | undefined {
    const o = this.#options;
    if (o.dispatcher) return o.dispatcher;
    let key = "";
    const connect: Agent.Options["connect"] & {} = {};
    if (url.protocol === "https:" && names(o.skipTlsVerify, url)) {
      key = "no-verify";
      Object.assign(connect, { rejectUnauthorized: false });
    } else if (o.ca !== undefined) {
      key = "ca";
      // Node's `ca` replaces the root store: keep the public roots and add the caller's.
      const extra = (Array.isArray(o.ca) ? o.ca : [o.ca]) as (string | Buffer)[];
      Object.assign(connect, { ca: [...rootCertificates, ...extra.map(String)] });
    }
    if (guarded) {
      key += "+guarded";
      Object.assign(connect, { lookup: refuseLocalLookup });
    }
    if (key === "") return undefined;
    let agent = this.#agents.get(key);
    if (!agent) {
      agent = new Agent({ connect });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  /**
   * Refuse a target a registry sent us to (redirect, token realm) when it is a local address and the
   * registry is not itself on this host (unless the caller allows it). Resolves true when the check is
   * left to the connection (a name: see refuseLocalLookup), false when there is nothing to check.
   */
  async #checkTarget(url: URL, registryHost: string): Promise<boolean> {
    if (this.#options.allowLocalRedirects) return false;
    const hostname = bareHostname(url.host);
    if (hostname === bareHostname(registryHost)) return false;
    let registryLocal = this.#localRegistries.get(registryHost);
    if (registryLocal === undefined) {
      registryLocal = localAddressOf(registryHost).then((a) => a !== undefined);
      this.#localRegistries.set(registryHost, registryLocal);
    }
    if (await registryLocal) return false;
    // An IP literal is decided here; a name at connect time, or here when the caller owns the dispatcher.
    const decideNow =
      isIP(hostname) !== 0 || hostname === "localhost" || this.#options.dispatcher !== undefined;
    const local = decideNow ? await localAddressOf(hostname) : undefined;
    if (local !== undefined) throw this.#localRefusal(url, registryHost, local);
    return !decideNow;
  }

  #localRefusal(url: URL, registryHost: string, address: string): ValidationError {
    return new ValidationError(
      `refusing to follow ${registryHost} to ${url.origin}: ${url.hostname} is ${address}, a loopback, ` +
        `link-local or unspecified address, and the registry is not on this host (set allowLocalRedirects to allow it)`,
      DETAILS,
    );
  }

  /** One GET, following redirects by hand so Authorization is dropped when the origin changes, and
   *  no target outside `registryHost` is a local address (see #checkTarget). */
  async #send(
    url: URL,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    registryHost: string,
  ): Promise<Response> {
    let current = url;
    let h = { "user-agent": this.#options.userAgent ?? "berth", ...headers };
    for (let i = 0; i <= MAX_REDIRECTS; i++) {
      let res: Dispatcher.ResponseData;
      const dispatcher = this.#dispatcher(current, await this.#checkTarget(current, registryHost));
      try {
        res = await request(current, {
          method: "GET",
          headers: h,
          ...(signal ? { signal } : {}),
          ...(dispatcher ? { dispatcher } : {}),
        });
      } catch (err) {
        if (signal?.aborted) {
          throw new AbortedError(`GET ${current.origin}: aborted`, { ...DETAILS, cause: err });
        }
        const code = (err as { code?: unknown }).code;
        if (code === LOCAL_ADDRESS_CODE) {
          throw this.#localRefusal(current, registryHost, (err as { address: string }).address);
        }
        if (typeof code === "string" && TLS_VERIFY_CODES.has(code)) {
          throw new ValidationError(
            `GET ${current.origin}: TLS certificate verification failed for ${current.host} (${(err as Error).message}); trust its CA with the \`ca\` option or name the host in \`skipTlsVerify\``,
            { ...DETAILS, status: code, cause: err },
          );
        }
        throw new UnavailableError(
          `GET ${current.origin}${current.pathname}: ${(err as Error).message ?? String(err)}`,
          { ...DETAILS, cause: err },
        );
      }
      const location = res.headers.location;
      if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === "string") {
        discard(res.body);
        let next: URL;
        try {
          next = new URL(location, current);
        } catch (cause) {
          throw new ProtocolError(
            `GET ${current.origin}: a redirect to ${JSON.stringify(location.slice(0, 200))}, not a URL`,
            {
              ...DETAILS,
              cause,
            },
          );
        }
        if (next.protocol !== "https:" && next.protocol !== "http:") {
          throw new ValidationError(`refusing a redirect to ${next.protocol} URL`, DETAILS);
        }
        if (next.protocol === "http:" && !this.#plainOk(next.host)) {
          throw new ValidationError(`refusing a redirect to plain HTTP ${next.origin}`, DETAILS);
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
    throw new ProtocolError(`GET ${url.origin}: more than ${MAX_REDIRECTS} redirects`, DETAILS);
  }
}

async function* verified(
  body: Dispatcher.ResponseData["body"],
  descriptor: BlobDescriptor,
  start: number,
  { name: where, signal }: { name: string; signal: AbortSignal | undefined },
  skip: number,
  hashed: boolean,
): AsyncGenerator<Buffer> {
  const hash = hashed ? createHash("sha256") : undefined;
  let size = start;
  let complete = false;
  try {
    for await (const chunk of readable(body, `${where}: blob ${descriptor.digest}`, signal)) {
      size += chunk.length;
      if (size > descriptor.size) {
        throw new DigestMismatchError(
          `${where}: blob ${descriptor.digest} is longer than its ${descriptor.size} bytes`,
          descriptor.digest,
          "(too long)",
          DETAILS,
        );
      }
      hash?.update(chunk);
      const from = Math.max(0, skip - (size - chunk.length));
      if (from < chunk.length) yield from === 0 ? chunk : chunk.subarray(from);
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
      DETAILS,
    );
  }
  if (hash) {
    const actual = `sha256:${hash.digest("hex")}`;
    if (descriptor.digest.startsWith("sha256:") && actual !== descriptor.digest) {
      throw new DigestMismatchError(
        `${where}: blob ${descriptor.digest} has digest ${actual}`,
        descriptor.digest,
        actual,
        DETAILS,
      );
    }
  }
}
