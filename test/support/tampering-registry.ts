// A hostile registry for integration tests: a node:http proxy on 127.0.0.1 in front of the harness's real
// registry ($BERTH_REGISTRY) that forwards every request as it is, except that it serves the blobs it is
// told to tamper with one byte flipped (status, headers, Content-Length and Docker-Content-Digest unchanged,
// so only a digest check can tell), and asks for Basic credentials before serving the repositories it is
// told are private. It records every request and its Authorization header, so a test can show what reached
// it. Fresh images (one layer of random bytes, so no daemon's cache holds them) are pushed to the real
// registry through the distribution API and named through the proxy.
//
// Podman only speaks plain HTTP to the registries its registries.conf marks insecure (the harness lists
// 127.0.0.1:5000 and :5001): with $BERTH_HOSTILE_REGISTRY (an insecure host:port of 127.0.0.1) the proxy
// listens there; without it, atRestHostileRegistry tampers with the layer in the real registry's storage.
import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { HostileRegistry } from "@berth/runtime-core/conformance";
import { tarOf } from "../faults/slow-registry.js";

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/**
 * Where the flipped byte goes. "gzip-header": the gzip MTIME field, so the layer still decompresses to the
 * same tar and only its digest differs (what a registry serving other bytes under a digest looks like to a
 * daemon that verifies it). "data": the middle of the compressed stream, which breaks the gzip too.
 */
export type TamperMode = "gzip-header" | "data";

export interface Credentials {
  username: string;
  password: string;
}

export const basic = (c: Credentials) =>
  `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;

/** Flip the byte `mode` names in a blob of `length` bytes, if it is in `chunk` (which starts at `offset`). */
function flip(chunk: Buffer, offset: number, length: number, mode: TamperMode): Buffer {
  // Byte 4 is the first of gzip's MTIME field; the middle of a 64 KiB layer is deflate data.
  const at = mode === "gzip-header" ? 4 : Math.floor(length / 2);
  if (at < offset || at >= offset + chunk.length) return chunk;
  const copy = Buffer.from(chunk);
  copy[at - offset] = (copy[at - offset] ?? 0) ^ 0xff;
  return copy;
}

export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | undefined;
}

export interface FreshImage {
  /** The image named through the proxy: 127.0.0.1:<port>/berth-hostile/<repo>:<tag>. */
  image: string;
  /** The same image at the real registry. */
  upstreamImage: string;
  layerDigest: string;
  configDigest: string;
  manifestDigest: string;
}

const ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  s390x: "s390x",
  ppc64: "ppc64le",
};

/** Push one blob with a monolithic upload (POST, then PUT ?digest=). */
async function pushBlob(
  upstream: string,
  repo: string,
  blob: Buffer,
  auth: Record<string, string>,
): Promise<string> {
  const digest = sha256(blob);
  const start = await fetch(`http://${upstream}/v2/${repo}/blobs/uploads/`, {
    method: "POST",
    headers: auth,
  });
  if (start.status !== 202) throw new Error(`blob upload to ${upstream}/${repo}: ${start.status}`);
  const location = new URL(start.headers.get("location") ?? "", `http://${upstream}`);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, {
    method: "PUT",
    headers: { ...auth, "content-type": "application/octet-stream" },
    body: blob,
  });
  if (put.status !== 201) throw new Error(`blob upload to ${upstream}/${repo}: ${put.status}`);
  return digest;
}

/** Push a one-layer image of `layerBytes` random bytes (Basic `credentials` if the registry wants them). */
export async function pushFreshImage(
  upstream: string,
  repo: string,
  tag: string,
  options: { layerBytes?: number; credentials?: Credentials } = {},
): Promise<Omit<FreshImage, "image" | "upstreamImage">> {
  const auth: Record<string, string> = options.credentials
    ? { authorization: basic(options.credentials) }
    : {};
  const layerTar = tarOf("hostile.bin", randomBytes(options.layerBytes ?? 64 * 1024));
  const layer = gzipSync(layerTar);
  const config = Buffer.from(
    JSON.stringify({
      architecture: ARCH[process.arch] ?? process.arch,
      os: "linux",
      config: { Cmd: ["/hostile.bin"] },
      rootfs: { type: "layers", diff_ids: [sha256(layerTar)] },
    }),
  );
  const configDigest = await pushBlob(upstream, repo, config, auth);
  const layerDigest = await pushBlob(upstream, repo, layer, auth);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: configDigest,
        size: config.length,
      },
      layers: [
        { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layerDigest, size: layer.length },
      ],
    }),
  );
  const put = await fetch(`http://${upstream}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { ...auth, "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: manifest,
  });
  if (put.status !== 201) throw new Error(`manifest push to ${upstream}/${repo}:${tag}: ${put.status}`);
  return { layerDigest, configDigest, manifestDigest: sha256(manifest) };
}

export class TamperingRegistry {
  /** Blob digests served tampered, and where the byte is flipped. */
  readonly tampered = new Map<string, TamperMode>();
  /** Repositories served only with `credentials`. */
  readonly privateRepos = new Set<string>();
  /** Every request received, in order. */
  readonly seen: SeenRequest[] = [];
  /** Every image made, as the proxy names it and as the real registry does (for clean-up). */
  readonly made: FreshImage[] = [];
  /** Tampered blob responses actually sent (a daemon holding the blob would not ask). */
  flipped = 0;
  readonly credentials: Credentials = {
    username: "berth-hostile",
    password: randomBytes(12).toString("hex"),
  };
  readonly #server: Server;
  #host = "";

  private constructor(readonly upstream: string) {
    this.#server = createServer((req, res) => this.#serve(req, res));
  }

  /** Listen on 127.0.0.1 (`port` 0: any free one) in front of `upstream` (host:port, plain HTTP). */
  static async start(upstream: string, port = 0): Promise<TamperingRegistry> {
    const reg = new TamperingRegistry(upstream);
    await new Promise<void>((resolve, reject) => {
      reg.#server.once("error", reject);
      reg.#server.listen(port, "127.0.0.1", () => resolve());
    });
    reg.#host = `127.0.0.1:${(reg.#server.address() as AddressInfo).port}`;
    return reg;
  }

  /** host:port, as an image reference names it. */
  get host(): string {
    return this.#host;
  }

  /** The Authorization headers received so far. */
  get authorizations(): string[] {
    return this.seen.flatMap((s) => (s.authorization === undefined ? [] : [s.authorization]));
  }

  /**
   * Push a fresh image to the real registry and name it through this proxy; `tamper` flips its layer
   * (default "gzip-header"), `private` serves it only with `credentials`.
   */
  async freshImage(
    options: { tamper?: TamperMode | false; private?: boolean; layerBytes?: number } = {},
  ): Promise<FreshImage> {
    const repo = `berth-hostile/${randomBytes(4).toString("hex")}`;
    const tag = "v1";
    const digests = await pushFreshImage(this.upstream, repo, tag, options);
    const mode = options.tamper ?? "gzip-header";
    if (mode) this.tampered.set(digests.layerDigest, mode);
    if (options.private) this.privateRepos.add(repo);
    const made = {
      ...digests,
      image: `${this.#host}/${repo}:${tag}`,
      upstreamImage: `${this.upstream}/${repo}:${tag}`,
    };
    this.made.push(made);
    return made;
  }

  /** What the conformance suite's hostile-registry checks need, served by this proxy. */
  forConformance(): HostileRegistry {
    return {
      tamperedImage: async () => (await this.freshImage()).image,
      privateImage: async () => (await this.freshImage({ tamper: false, private: true })).image,
      credentials: this.credentials,
      requests: () => this.seen.length,
      authorizations: () => this.authorizations,
    };
  }

  #serve(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? "/";
    const { authorization, ...headers } = req.headers;
    this.seen.push({ method: req.method ?? "", path, authorization });
    const m = /^\/v2\/(.+)\/(?:manifests|blobs)\/([^/?]+)/.exec(path);
    // The ping (/v2/) is challenged too, as registries with auth do: that is where clients learn of it.
    const privateRepo = m
      ? this.privateRepos.has(m[1] ?? "")
      : path.startsWith("/v2/") && this.privateRepos.size > 0;
    if (privateRepo && authorization !== basic(this.credentials)) {
      res.writeHead(401, {
        "content-type": "application/json",
        "docker-distribution-api-version": "registry/2.0",
        "www-authenticate": 'Basic realm="berth-hostile"',
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const mode = req.method === "GET" && m?.[2] ? this.tampered.get(m[2]) : undefined;
    const [hostname, port] = this.upstream.split(":");
    const up = request(
      {
        host: hostname,
        port: Number(port),
        method: req.method,
        path,
        headers: { ...headers, host: this.upstream },
      },
      (upRes) => {
        const out = { ...upRes.headers };
        // The registry's own Location headers name it: keep clients on the proxy.
        if (typeof out.location === "string")
          out.location = out.location.replace(`//${this.upstream}`, `//${this.#host}`);
        res.writeHead(upRes.statusCode ?? 502, out);
        if (!mode || upRes.statusCode !== 200) {
          upRes.pipe(res);
          return;
        }
        this.flipped++;
        const length = Number(upRes.headers["content-length"] ?? 0);
        let offset = 0;
        upRes.on("data", (chunk: Buffer) => {
          res.write(flip(chunk, offset, length, mode));
          offset += chunk.length;
        });
        upRes.on("end", () => res.end());
        upRes.on("error", () => res.destroy());
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** The real registry's storage: where the harness keeps it unless $BERTH_REGISTRY_DATA says. */
function registryData(): string {
  const state = process.env.BERTH_RUNTIMES_DIR ?? fileURLToPath(new URL("../../.runtimes", import.meta.url));
  return process.env.BERTH_REGISTRY_DATA ?? join(state, "registry", "data");
}

/** Push a fresh image to `registry` (a harness registry, plain HTTP) and name it there. */
async function freshAt(registry: string, credentials?: Credentials): Promise<FreshImage> {
  const repo = `berth-hostile/${randomBytes(4).toString("hex")}`;
  const digests = await pushFreshImage(registry, repo, "v1", credentials ? { credentials } : {});
  const image = `${registry}/${repo}:v1`;
  return { ...digests, image, upstreamImage: image };
}

/**
 * A fresh image on the real registry ($BERTH_REGISTRY) whose layer is flipped where the registry stores
 * it: the registry serves it as it serves any blob, size and digest header unchanged.
 */
export async function tamperedAtRest(
  mode: TamperMode = "gzip-header",
  env: NodeJS.ProcessEnv = process.env,
): Promise<FreshImage> {
  const made = await freshAt(env.BERTH_REGISTRY ?? "");
  const hex = made.layerDigest.slice("sha256:".length);
  const file = join(registryData(), "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
  const blob = await readFile(file);
  await writeFile(file, flip(blob, 0, blob.length, mode));
  return made;
}

/**
 * The hostile registry without a proxy, for a daemon that cannot reach one (Podman without an insecure
 * port for it): tampered layers come from tamperedAtRest, private images are pushed to the harness's
 * password registry ($BERTH_AUTH_REGISTRY). What reached the registries cannot be seen.
 */
export function atRestHostileRegistry(
  env: NodeJS.ProcessEnv = process.env,
): HostileRegistry & { made: string[] } {
  const made: string[] = [];
  const keep = (m: FreshImage) => {
    made.push(m.image);
    return m.image;
  };
  const credentials = {
    username: env.BERTH_AUTH_REGISTRY_USER ?? "",
    password: env.BERTH_AUTH_REGISTRY_PASSWORD ?? "",
  };
  return {
    made,
    credentials,
    tamperedImage: async () => keep(await tamperedAtRest("gzip-header", env)),
    privateImage: async () => keep(await freshAt(env.BERTH_AUTH_REGISTRY ?? "", credentials)),
  };
}
