// Registry trust against the real containerd: a registry that serves tampered bytes, manifests that do not
// match their digest, redirects to other hosts, credentials for another registry, and TLS certificates
// that do not verify. Fixture registries are small node:http(s) servers started here, on 127.0.0.1, on
// other loopback addresses (127.0.0.2, 127.0.0.3: another origin, still plain-HTTP-able) and, for what
// only a non-loopback host shows (plain-HTTP refusal, TLS by default), on this machine's first
// non-loopback IPv4 address. Each case prints one `registry-trust:` line.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import {
  DigestMismatchError,
  NotFoundError,
  type RegistryCredentials,
  resolveCredentials,
  UnauthorizedError,
  ValidationError,
} from "@berth/runtime-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ContainerdClient,
  type ContainerdPullOptions,
  contentV1,
  hasBlob,
  hostPlatform,
  type PullEvent,
  pullProgress,
  removeNamespace,
} from "../src/index.js";

const NS = `berth-trust-${randomBytes(4).toString("hex")}`;
let c: ContainerdClient;

/** This machine's first non-loopback IPv4 address: a host that is neither loopback nor insecure. */
const EXT = Object.values(networkInterfaces())
  .flat()
  .filter((i) => i && i.family === "IPv4" && !i.internal && !i.address.startsWith("169.254."))
  .map((i) => i?.address as string)[0];
/** Another non-loopback address (IPv4 or a non-link-local IPv6), for a certificate naming another host. */
const OTHER = Object.values(networkInterfaces())
  .flat()
  .filter((i) => i && !i.internal && i.address !== EXT && !/^(169\.254\.|fe80:)/i.test(i.address))
  .map((i) => i?.address as string)[0];

beforeAll(() => {
  c = ContainerdClient.fromEnv().withNamespace(NS);
});

afterAll(async () => {
  await removeNamespace(c);
  expect(await c.namespaceExists()).toBe(false);
  c.close();
});

// ---- fixture images ----

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A one-file ustar archive: enough for containerd's diff applier. */
function tar(name: string, data: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, "utf8");
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124);
  h.write(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, "0")}\0`,
    136,
  );
  h.write("        ", 148);
  h.write("0", 156);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512), Buffer.alloc(1024)]);
}

interface FixtureImage {
  repo: string;
  tag: string;
  config: Buffer;
  configDigest: string;
  layer: Buffer;
  layerDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  /** When set, the tag names this index (one entry: the manifest, for this host's platform). */
  index?: { bytes: Buffer; digest: string };
}

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE = "application/vnd.oci.image.index.v1+json";

/** A fresh image (random content, so no namespace holds its blobs); `layerBytes` of incompressible data. */
function makeImage(repo: string, layerBytes = 4096, withIndex = false): FixtureImage {
  const layerTar = tar("trust.bin", randomBytes(layerBytes));
  const layer = gzipSync(layerTar);
  const platform = hostPlatform();
  const config = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: "linux",
      config: { Cmd: ["/trust.bin"] },
      rootfs: { type: "layers", diff_ids: [sha(layerTar)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha(config),
        size: config.length,
      },
      layers: [
        { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(layer), size: layer.length },
      ],
    }),
  );
  const img: FixtureImage = {
    repo,
    tag: "v1",
    config,
    configDigest: sha(config),
    layer,
    layerDigest: sha(layer),
    manifest,
    manifestDigest: sha(manifest),
  };
  if (withIndex) {
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: INDEX_TYPE,
        manifests: [
          {
            mediaType: MANIFEST_TYPE,
            digest: img.manifestDigest,
            size: manifest.length,
            platform: { os: "linux", architecture: platform.architecture },
          },
        ],
      }),
    );
    img.index = { bytes, digest: sha(bytes) };
  }
  return img;
}

// ---- fixture servers ----

interface Seen {
  path: string;
  authorization: string | undefined;
  range?: string;
}

interface Fixture {
  /** host:port, as an image reference names it. */
  host: string;
  origin: string;
  seen: Seen[];
}

type Handler = (req: IncomingMessage, res: ServerResponse, self: Fixture) => void;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function serve(
  address: string,
  handler: Handler,
  tls?: { key: string; cert: string },
): Promise<Fixture> {
  const self: Fixture = { host: "", origin: "", seen: [] };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    self.seen.push({
      path: req.url ?? "",
      authorization: req.headers.authorization,
      ...(req.headers.range ? { range: req.headers.range } : {}),
    });
    handler(req, res, self);
  };
  const server = tls ? createHttpsServer(tls, listener) : createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as AddressInfo).port;
  self.host = `${address.includes(":") ? `[${address}]` : address}:${port}`;
  self.origin = `${tls ? "https" : "http"}://${self.host}`;
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return self;
}

const basicHeader = (user: string, pass: string) =>
  `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;

/** A token service: hands out `token` to a request carrying `basic` (any request when undefined). */
function tokenService(token: string, basic?: string): Handler {
  return (req, res) => {
    if (basic !== undefined && req.headers.authorization !== basic) {
      res.writeHead(401, { "content-type": "application/json" }).end('{"details":"bad credentials"}');
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token }));
  };
}

interface RegistryOptions {
  images: FixtureImage[];
  /** Basic: the Authorization value required. Bearer: the token required and where to get it. */
  auth?: { basic: string } | { bearer: { token: string; realm: (self: Fixture) => string } };
  /** The token service at /token on the registry itself: the Basic value it requires. */
  tokenBasic?: string;
  /** Bytes served instead of the real ones for a manifest reference or a blob digest. */
  replace?: (kind: "manifest" | "blob", reference: string, bytes: Buffer) => Buffer;
  /** Docker-Content-Digest sent for a manifest (default: the digest of the bytes served). */
  digestHeader?: (reference: string, served: Buffer) => string;
  /** Location to redirect a blob GET to (307), as registries do to object storage. */
  redirectBlob?: (digest: string) => string | undefined;
  /** Answer a blob GET with `Range: bytes=N-` by 206 and the rest (default: ignore Range, send it all). */
  honourRange?: boolean;
  /** Send a blob's first `at` bytes, then wait for `until` before the rest. */
  stallBlob?: (digest: string) => { at: number; until: Promise<void> } | undefined;
}

const V2_PATH = /^\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)$/;

function registry(o: RegistryOptions): Handler {
  return (req, res, self) => {
    const path = (req.url ?? "").split("?")[0] ?? "";
    if (path === "/token" && o.auth && "bearer" in o.auth) {
      tokenService(o.auth.bearer.token, o.tokenBasic)(req, res, self);
      return;
    }
    if (o.auth && "basic" in o.auth && req.headers.authorization !== o.auth.basic) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="fixture"' }).end();
      return;
    }
    if (o.auth && "bearer" in o.auth && req.headers.authorization !== `Bearer ${o.auth.bearer.token}`) {
      const m = V2_PATH.exec(path);
      const scope = `repository:${m?.[1] ?? ""}:pull`;
      res
        .writeHead(401, {
          "www-authenticate": `Bearer realm="${o.auth.bearer.realm(self)}",service="fixture",scope="${scope}"`,
        })
        .end();
      return;
    }
    const m = V2_PATH.exec(path);
    const img = o.images.find((i) => i.repo === m?.[1]);
    if (!m || !img) {
      res.writeHead(404).end();
      return;
    }
    const [, , kind, reference = ""] = m;
    if (kind === "manifests") {
      let bytes: Buffer | undefined;
      let type = MANIFEST_TYPE;
      if (reference === img.tag) {
        bytes = img.index?.bytes ?? img.manifest;
        if (img.index) type = INDEX_TYPE;
      } else if (reference === img.manifestDigest) bytes = img.manifest;
      else if (reference === img.index?.digest) [bytes, type] = [img.index.bytes, INDEX_TYPE];
      if (!bytes) {
        res.writeHead(404).end();
        return;
      }
      const served = o.replace?.("manifest", reference, bytes) ?? bytes;
      res
        .writeHead(200, {
          "content-type": type,
          "docker-content-digest": o.digestHeader?.(reference, served) ?? sha(served),
        })
        .end(served);
      return;
    }
    const location = o.redirectBlob?.(reference);
    if (location) {
      res.writeHead(307, { location }).end();
      return;
    }
    const blob =
      reference === img.configDigest ? img.config : reference === img.layerDigest ? img.layer : undefined;
    if (!blob) {
      res.writeHead(404).end();
      return;
    }
    const served = o.replace?.("blob", reference, blob) ?? blob;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range && o.honourRange) {
      const from = Number(range[1]);
      res
        .writeHead(206, {
          "content-type": "application/octet-stream",
          "content-range": `bytes ${from}-${served.length - 1}/${served.length}`,
        })
        .end(served.subarray(from));
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream" });
    const stall = o.stallBlob?.(reference);
    if (!stall) {
      res.end(served);
      return;
    }
    res.write(served.subarray(0, stall.at));
    void stall.until.then(() => res.end(served.subarray(stall.at)));
  };
}

/** Object storage: serves any blob of `images` at a path ending in its digest, no auth asked. */
function blobStore(images: FixtureImage[]): Handler {
  return (req, res) => {
    const digest = (req.url ?? "").split("?")[0]?.split("/").pop();
    for (const img of images) {
      if (digest === img.configDigest) return void res.writeHead(200).end(img.config);
      if (digest === img.layerDigest) return void res.writeHead(200).end(img.layer);
    }
    res.writeHead(404).end();
  };
}

// ---- helpers ----

const ref = (f: Fixture, img: FixtureImage) => `${f.host}/${img.repo}:${img.tag}`;

async function pullEvents(
  reference: string,
  options: ContainerdPullOptions = {},
): Promise<{ events: PullEvent[]; error: unknown }> {
  const events: PullEvent[] = [];
  try {
    for await (const e of pullProgress(c, reference, options)) events.push(e);
    return { events, error: undefined };
  } catch (error) {
    return { events, error };
  }
}

/** What a refused pull may have left in the namespace. */
async function leftovers(img: FixtureImage, name: string) {
  let blobs = 0;
  for (const d of [img.configDigest, img.layerDigest, img.manifestDigest, img.index?.digest]) {
    if (d && (await hasBlob(c, d))) blobs++;
  }
  const leases = (await c.leases.list({})).leases.length;
  const ingests = (await c.content.listStatuses({ filters: [] })).statuses.length;
  const image = await c.images.get({ name }).then(
    () => 1,
    (err: unknown) => {
      if (err instanceof NotFoundError) return 0;
      throw err;
    },
  );
  return { blobs, leases, ingests, image };
}

/**
 * Leave a half-written ingest of the image's layer under the ref pull.ts writes it under, as a pull killed
 * mid-blob would: the next pull resumes it with a Range request.
 */
async function interruptedIngest(img: FixtureImage, upTo: number): Promise<void> {
  const base = {
    ref: `berth-layer-${img.layerDigest}`,
    total: BigInt(img.layer.length),
    expected: img.layerDigest,
  };
  const { WriteAction } = contentV1;
  for await (const _ of c.content.write([
    { ...base, action: WriteAction.STAT },
    { ...base, action: WriteAction.WRITE, offset: 0n, data: img.layer.subarray(0, upTo) },
  ])) {
    // the answers; the stream ends without a commit
  }
}

const nothingLeft = { blobs: 0, leases: 0, ingests: 0, image: 0 };
const auths = (f: Fixture) => f.seen.filter((s) => s.authorization !== undefined);

// ---- the cases ----

describe("registry trust", () => {
  it("1. a tampered blob is refused and nothing is committed", async () => {
    // 1.5 MiB of random data, the flipped byte near the end: the registry holds back the tail until the
    // test has seen the first MiB in containerd's ingest, so the refusal has something to clean up.
    const img = makeImage("trust/tampered", 1536 * 1024);
    let mode: "flip" | "extra" | "config" | "honest" = "flip";
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const reg = await serve(
      "127.0.0.1",
      registry({
        images: [img],
        replace: (kind, digest, bytes) => {
          if (kind !== "blob") return bytes;
          if (mode === "flip" && digest === img.layerDigest) {
            const b = Buffer.from(bytes);
            b[b.length - 100] = (b[b.length - 100] ?? 0) ^ 0xff; // same size, same claimed digest
            return b;
          }
          if (mode === "extra" && digest === img.layerDigest) return Buffer.concat([bytes, Buffer.from("x")]);
          if (mode === "config" && digest === img.configDigest)
            return Buffer.from(bytes.toString().replace("linux", "LINUX"));
          return bytes;
        },
        stallBlob: (digest) =>
          mode === "flip" && digest === img.layerDigest
            ? { at: img.layer.length - 1000, until: released }
            : undefined,
      }),
    );
    const name = ref(reg, img);

    const pulling = pullEvents(name);
    let midPull = 0;
    for (let i = 0; i < 200 && midPull < 1024 * 1024; i++) {
      const { statuses } = await c.content.listStatuses({ filters: [] });
      midPull = Number(statuses.find((s) => s.total === BigInt(img.layer.length))?.offset ?? 0);
      if (midPull < 1024 * 1024) await new Promise((r) => setTimeout(r, 25));
    }
    release();
    const flipped = await pulling;
    expect(midPull).toBeGreaterThanOrEqual(1024 * 1024);
    expect(flipped.error).toBeInstanceOf(DigestMismatchError);
    expect((flipped.error as DigestMismatchError).expected).toBe(img.layerDigest);
    const afterFlip = await leftovers(img, name);
    expect(afterFlip).toEqual(nothingLeft);

    mode = "extra";
    const extra = await pullEvents(name);
    expect(extra.error).toBeInstanceOf(DigestMismatchError);
    expect((extra.error as Error).message).toMatch(/longer than/);
    expect(await leftovers(img, name)).toEqual(nothingLeft);

    mode = "config";
    const config = await pullEvents(name);
    expect(config.error).toBeInstanceOf(DigestMismatchError);
    expect((config.error as DigestMismatchError).expected).toBe(img.configDigest);
    expect(await leftovers(img, name)).toEqual(nothingLeft);

    // the same registry serving the real bytes: the fixture is sound and nothing was poisoned
    mode = "honest";
    const honest = await pullEvents(name);
    expect(honest.error).toBeUndefined();
    expect(await leftovers(img, name)).toEqual({ blobs: 3, leases: 0, ingests: 0, image: 1 });

    console.log(
      `registry-trust: tampered blob refused (flipped byte, extra byte, tampered config: 3/3 DigestMismatchError), ` +
        `${afterFlip.blobs} blobs committed, ${afterFlip.leases} leases left, ${afterFlip.ingests} ingests left, ` +
        `${afterFlip.image} image records (the ingest held ${midPull} bytes mid-pull); honest retry committed 3 blobs`,
    );
  });

  it("1b. resuming an interrupted blob: a tampered rest is refused, a registry ignoring Range still works", async () => {
    const img = makeImage("trust/resume", 1536 * 1024);
    let tamper = true;
    const reg = await serve(
      "127.0.0.1",
      registry({
        images: [img],
        honourRange: true,
        replace: (kind, digest, bytes) => {
          if (!tamper || kind !== "blob" || digest !== img.layerDigest) return bytes;
          const b = Buffer.from(bytes);
          b[b.length - 10] = (b[b.length - 10] ?? 0) ^ 0xff;
          return b;
        },
      }),
    );
    const name = ref(reg, img);
    const half = 700 * 1024;

    // Range honoured, the rest tampered: only the content store can tell (it hashes the whole blob at
    // commit); the commit is refused, the ingest dropped.
    await interruptedIngest(img, half);
    expect((await c.content.listStatuses({ filters: [] })).statuses.map((s) => Number(s.offset))).toEqual([
      half,
    ]);
    const tampered = await pullEvents(name);
    expect(tampered.error).toBeInstanceOf(DigestMismatchError);
    expect((tampered.error as DigestMismatchError).expected).toBe(img.layerDigest);
    const afterTamper = await leftovers(img, name);
    expect(afterTamper).toEqual(nothingLeft);

    // A registry that ignores Range (200, whole blob): the bytes the ingest has are skipped, not appended.
    tamper = false;
    await interruptedIngest(img, half);
    const noRange = await serve("127.0.0.1", registry({ images: [img] }));
    const resumed = await pullEvents(ref(noRange, img));
    expect(resumed.error).toBeUndefined();
    expect(noRange.seen.find((s) => s.path.endsWith(img.layerDigest))?.range).toBe(`bytes=${half}-`);
    const done = resumed.events.find((e) => e.type === "blob-done" && e.kind === "layer");
    expect(done?.type === "blob-done" && done.downloaded).toBe(img.layer.length - half);
    console.log(
      `registry-trust: resumed blob with a tampered rest refused (DigestMismatchError at commit), ` +
        `${afterTamper.blobs} blobs committed, ${afterTamper.ingests} ingests left; resume from a registry ` +
        `ignoring Range committed the blob (${done?.type === "blob-done" ? done.downloaded : 0} new bytes of ${img.layer.length})`,
    );
  });

  it("2. a manifest that does not match its digest is refused before anything is written", async () => {
    const img = makeImage("trust/pinned", 4096, true);
    const other = makeImage("trust/other");
    let mode: "pinned" | "header" | "index" = "pinned";
    const reg = await serve(
      "127.0.0.1",
      registry({
        images: [img, other],
        replace: (kind, reference, bytes) => {
          if (kind !== "manifest") return bytes;
          // digest-pinned manifest, or the index's child: other bytes under the asked-for digest
          if ((mode === "pinned" || mode === "index") && reference === img.manifestDigest) {
            return Buffer.from(`${bytes.toString()} `);
          }
          return bytes;
        },
        // a tag whose Docker-Content-Digest disagrees with the body
        digestHeader: (reference, served) =>
          mode === "header" && reference === img.tag ? other.manifestDigest : sha(served),
      }),
    );
    const results: string[] = [];
    const blobGets = () => reg.seen.filter((s) => s.path.includes("/blobs/")).length;

    const pinned = `${reg.host}/${img.repo}@${img.manifestDigest}`;
    const e1 = (await pullEvents(pinned)).error;
    expect(e1).toBeInstanceOf(DigestMismatchError);
    expect((e1 as DigestMismatchError).expected).toBe(img.manifestDigest);
    expect(await leftovers(img, pinned)).toEqual(nothingLeft);
    results.push("digest-pinned");

    mode = "header";
    const tagged = ref(reg, img);
    const e2 = (await pullEvents(tagged)).error;
    expect(e2).toBeInstanceOf(DigestMismatchError);
    expect((e2 as DigestMismatchError).expected).toBe(other.manifestDigest);
    expect(await leftovers(img, tagged)).toEqual(nothingLeft);
    results.push("tag with wrong Docker-Content-Digest");

    mode = "index";
    const e3 = (await pullEvents(tagged)).error;
    expect(e3).toBeInstanceOf(DigestMismatchError);
    expect((e3 as DigestMismatchError).expected).toBe(img.manifestDigest);
    expect(await leftovers(img, tagged)).toEqual(nothingLeft);
    results.push("index child");

    expect(blobGets()).toBe(0);
    console.log(
      `registry-trust: manifest digest mismatch refused (${results.join(", ")}: ${results.length}/3 DigestMismatchError), ` +
        `0 blobs fetched, 0 blobs committed, 0 leases left`,
    );
  });

  it("3. a blob redirect to another host: followed without Authorization; plain HTTP off loopback refused", async () => {
    const user = "alice";
    const pass = randomBytes(8).toString("hex");
    const creds = (f: Fixture): RegistryCredentials => ({
      serverAddress: f.host,
      username: user,
      password: pass,
    });

    // Basic auth on the registry; blobs redirected to object storage on another loopback address.
    const imgA = makeImage("trust/redirect-basic");
    const storeA = await serve("127.0.0.2", blobStore([imgA]));
    const regA = await serve(
      "127.0.0.1",
      registry({
        images: [imgA],
        auth: { basic: basicHeader(user, pass) },
        redirectBlob: (d) => `${storeA.origin}/bucket/${d}?X-Amz-Signature=fixture`,
      }),
    );
    const a = await pullEvents(ref(regA, imgA), { credentials: creds(regA) });
    expect(a.error).toBeUndefined();
    expect(auths(regA).length).toBeGreaterThan(0);
    expect(storeA.seen.length).toBe(2); // config + layer
    expect(auths(storeA)).toEqual([]);

    // Bearer auth (token service on the registry); blobs redirected likewise.
    const imgB = makeImage("trust/redirect-bearer");
    const token = randomBytes(12).toString("hex");
    const storeB = await serve("127.0.0.2", blobStore([imgB]));
    const regB = await serve(
      "127.0.0.1",
      registry({
        images: [imgB],
        auth: { bearer: { token, realm: (self) => `${self.origin}/token` } },
        tokenBasic: basicHeader(user, pass),
        redirectBlob: (d) => `${storeB.origin}/bucket/${d}`,
      }),
    );
    const b = await pullEvents(ref(regB, imgB), { credentials: creds(regB) });
    expect(b.error).toBeUndefined();
    expect(regB.seen.some((s) => s.authorization === `Bearer ${token}`)).toBe(true);
    expect(storeB.seen.length).toBe(2);
    expect(auths(storeB)).toEqual([]);

    // A redirect target that answers 401 with a challenge of its own (naming its own token service) gets
    // neither the registry's credentials nor its token, and the token service it names is never asked.
    const imgC = makeImage("trust/redirect-challenge");
    const evilRealm = await serve("127.0.0.3", tokenService("evil-token"));
    const storeC = await serve("127.0.0.2", (_req, res) => {
      res
        .writeHead(401, { "www-authenticate": `Bearer realm="${evilRealm.origin}/token",service="evil"` })
        .end();
    });
    const regC = await serve(
      "127.0.0.1",
      registry({
        images: [imgC],
        auth: { bearer: { token, realm: (self) => `${self.origin}/token` } },
        tokenBasic: basicHeader(user, pass),
        redirectBlob: (d) => `${storeC.origin}/bucket/${d}`,
      }),
    );
    const cErr = (await pullEvents(ref(regC, imgC), { credentials: creds(regC) })).error;
    expect(evilRealm.seen).toEqual([]);
    expect(cErr).toBeInstanceOf(UnauthorizedError);
    expect((cErr as Error).message).toContain(storeC.host);
    expect(auths(storeC)).toEqual([]);
    expect(await leftovers(imgC, ref(regC, imgC))).toEqual(nothingLeft);

    let plainFigure = "not run: no non-loopback IPv4 address on this machine";
    if (EXT) {
      // A redirect to plain HTTP on a host that is neither loopback nor marked insecure is refused.
      const imgD = makeImage("trust/redirect-plain");
      const plainStore = await serve(EXT, blobStore([imgD]));
      const regD = await serve(
        "127.0.0.1",
        registry({ images: [imgD], redirectBlob: (d) => `${plainStore.origin}/bucket/${d}` }),
      );
      const d = await pullEvents(ref(regD, imgD));
      expect(d.error).toBeInstanceOf(ValidationError);
      expect((d.error as Error).message).toMatch(/plain HTTP/);
      expect(plainStore.seen).toEqual([]);
      expect(await leftovers(imgD, ref(regD, imgD))).toEqual(nothingLeft);
      // ...and allowed once the caller marks that host insecure: the refusal was the decision, not the network
      const d2 = await pullEvents(ref(regD, imgD), { insecureRegistries: [plainStore.host] });
      expect(d2.error).toBeUndefined();
      expect(plainStore.seen.length).toBe(2);
      plainFigure = `refused (ValidationError, ${plainStore.host} got 0 requests), allowed when marked insecure`;
    }

    console.log(
      `registry-trust: blob redirect to another host followed; Authorization seen by the redirect target: ` +
        `basic ${auths(storeA).length}/${storeA.seen.length}, bearer ${auths(storeB).length}/${storeB.seen.length}; ` +
        `target's own challenge not answered (its token service got ${evilRealm.seen.length} requests); ` +
        `redirect to plain HTTP off loopback: ${plainFigure}`,
    );
  });

  it("4. credentials go only to the registry they are for (and its token service)", async () => {
    const passA = randomBytes(8).toString("hex");
    const passB = randomBytes(8).toString("hex");
    const imgA = makeImage("trust/creds-a");
    const imgB = makeImage("trust/creds-b");
    const regA = await serve(
      "127.0.0.1",
      registry({ images: [imgA], auth: { basic: basicHeader("a", passA) } }),
    );
    const regB = await serve(
      "127.0.0.2",
      registry({ images: [imgB], auth: { basic: basicHeader("b", passB) } }),
    );
    const credsA: RegistryCredentials = { serverAddress: regA.host, username: "a", password: passA };

    // credentials given for A, pulling from B: refused by B, which never sees them
    const e1 = (await pullEvents(ref(regB, imgB), { credentials: credsA })).error;
    expect(auths(regB)).toEqual([]);
    expect(e1).toBeInstanceOf(UnauthorizedError);
    expect((e1 as Error).message).toMatch(/not sent to another registry/);
    // credentials from a Docker config (runtime-core's resolver) that has only A
    const asked: string[] = [];
    const fromConfig = (registryName: string) => {
      asked.push(registryName);
      return resolveCredentials(registryName, {
        config: { auths: { [regA.host]: { auth: Buffer.from(`a:${passA}`).toString("base64") } } },
      });
    };
    const e2 = (await pullEvents(ref(regB, imgB), { credentials: fromConfig })).error;
    expect(e2).toBeInstanceOf(UnauthorizedError);
    expect(asked).toEqual([regB.host]);
    expect(auths(regB)).toEqual([]);
    expect(await leftovers(imgB, ref(regB, imgB))).toEqual(nothingLeft);
    // the same credentials do reach A (with either form) and the pull succeeds
    expect((await pullEvents(ref(regA, imgA), { credentials: credsA })).error).toBeUndefined();
    expect((await pullEvents(ref(regA, imgA), { credentials: fromConfig })).error).toBeUndefined();
    expect(auths(regA).every((s) => s.authorization === basicHeader("a", passA))).toBe(true);

    // Bearer with the token service on another host than the registry (as registry-1.docker.io and
    // auth.docker.io): like Docker, the registry's credentials go to the realm it names; the token goes
    // to the registry only, never to the realm nor to a redirect target.
    const imgR = makeImage("trust/realm");
    const token = randomBytes(12).toString("hex");
    const passR = randomBytes(8).toString("hex");
    const realm = await serve("127.0.0.2", tokenService(token, basicHeader("r", passR)));
    const store = await serve("127.0.0.3", blobStore([imgR]));
    const regR = await serve(
      "127.0.0.1",
      registry({
        images: [imgR],
        auth: { bearer: { token, realm: () => `${realm.origin}/token` } },
        redirectBlob: (d) => `${store.origin}/${d}`,
      }),
    );
    const credsR: RegistryCredentials = { serverAddress: regR.host, username: "r", password: passR };
    expect((await pullEvents(ref(regR, imgR), { credentials: credsR })).error).toBeUndefined();
    expect(realm.seen.length).toBe(1); // the token is cached for the rest of the pull
    expect(realm.seen.every((s) => s.authorization === basicHeader("r", passR))).toBe(true);
    expect(
      regR.seen.every((s) => s.authorization === undefined || s.authorization === `Bearer ${token}`),
    ).toBe(true);
    expect(auths(store)).toEqual([]);
    // credentials for A are not sent to R's token service either
    const imgR2 = makeImage("trust/realm");
    const realm2 = await serve("127.0.0.2", tokenService(token, basicHeader("r", passR)));
    const regR2 = await serve(
      "127.0.0.1",
      registry({ images: [imgR2], auth: { bearer: { token, realm: () => `${realm2.origin}/token` } } }),
    );
    const e3 = (await pullEvents(ref(regR2, imgR2), { credentials: credsA })).error;
    expect(e3).toBeInstanceOf(UnauthorizedError);
    expect(auths(realm2)).toEqual([]);

    let realmPlain = "not run: no non-loopback IPv4 address";
    if (EXT) {
      // a token service over plain HTTP on a non-loopback host is refused before any credential is sent
      const plainRealm = await serve(EXT, tokenService(token));
      const imgP = makeImage("trust/realm-plain");
      const regP = await serve(
        "127.0.0.1",
        registry({ images: [imgP], auth: { bearer: { token, realm: () => `${plainRealm.origin}/token` } } }),
      );
      const e4 = (await pullEvents(ref(regP, imgP), { credentials: { ...credsR, serverAddress: regP.host } }))
        .error;
      expect(e4).toBeInstanceOf(ValidationError);
      expect(plainRealm.seen).toEqual([]);
      realmPlain = `refused, ${plainRealm.seen.length} requests`;
    }

    console.log(
      `registry-trust: credentials for ${regA.host} sent to ${regB.host}: ${auths(regB).length} times ` +
        `(object and Docker-config forms both refused with UnauthorizedError); realm on another host got ` +
        `${realm.seen.length} Basic request(s) for its own registry, bearer token seen by the realm 0, ` +
        `by the redirect target ${auths(store).length}; other registry's credentials at the realm ${auths(realm2).length}; ` +
        `plain-HTTP realm off loopback: ${realmPlain}`,
    );
  });

  describe.skipIf(!EXT)("5. TLS", () => {
    const ext = EXT ?? "";
    let dir: string;
    let key: string;
    let cert: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "berth-trust-tls-"));
      await promisify(execFile)(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:P-256",
          "-nodes",
          "-days",
          "1",
          "-subj",
          "/CN=berth-trust-fixture",
          "-addext",
          `subjectAltName=IP:${ext}`,
          "-keyout",
          join(dir, "key.pem"),
          "-out",
          join(dir, "cert.pem"),
        ],
        { timeout: 30_000 },
      );
      key = await readFile(join(dir, "key.pem"), "utf8");
      cert = await readFile(join(dir, "cert.pem"), "utf8");
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("verifies certificates unless the caller trusts the CA or names the host", async () => {
      const images = ["trust/tls-a", "trust/tls-b", "trust/tls-c", "trust/tls-d"].map((r) => makeImage(r));
      const [imgA, imgB, imgC, imgD] = images as [FixtureImage, FixtureImage, FixtureImage, FixtureImage];
      const tlsStore = await serve(ext, blobStore([imgD]), { key, cert });
      const reg = await serve(
        ext,
        registry({
          images,
          redirectBlob: (d) =>
            d === imgD.layerDigest || d === imgD.configDigest ? `${tlsStore.origin}/${d}` : undefined,
        }),
        { key, cert },
      );

      const certError = (err: unknown) => {
        expect(err).toBeInstanceOf(ValidationError);
        expect((err as Error).message).toMatch(/TLS certificate verification failed/);
        expect((err as ValidationError).status).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
      };
      // verification is on by default
      const e1 = (await pullEvents(ref(reg, imgA))).error;
      certError(e1);
      expect(reg.seen).toEqual([]); // no request got past the handshake
      expect(await leftovers(imgA, ref(reg, imgA))).toEqual(nothingLeft);
      // naming other hosts (another port, a loopback name) does not turn it off for this one
      const port = Number(reg.host.split(":").pop());
      const e2 = (
        await pullEvents(ref(reg, imgA), { skipTlsVerify: [`${ext}:${port + 1}`, `127.0.0.1:${port}`, ext] })
      ).error;
      certError(e2);
      expect(reg.seen).toEqual([]);

      // the caller names this registry: verification off for it
      expect((await pullEvents(ref(reg, imgA), { skipTlsVerify: [reg.host] })).error).toBeUndefined();
      // the caller trusts the CA (here the self-signed certificate itself)
      expect((await pullEvents(ref(reg, imgB), { ca: cert })).error).toBeUndefined();
      expect((await pullEvents(ref(reg, imgC), { ca: [Buffer.from(cert)] })).error).toBeUndefined();

      // a registry named insecure redirecting to another https host: that host is still verified
      const e3 = (await pullEvents(ref(reg, imgD), { skipTlsVerify: [reg.host] })).error;
      certError(e3);
      expect(tlsStore.seen).toEqual([]);
      expect(await leftovers(imgD, ref(reg, imgD))).toEqual(nothingLeft);
      expect(
        (await pullEvents(ref(reg, imgD), { skipTlsVerify: [reg.host, tlsStore.host] })).error,
      ).toBeUndefined();
      expect(tlsStore.seen.length).toBe(2);

      // the right CA but a certificate for another address: still refused
      let altName = "not run: only one non-loopback address";
      if (OTHER) {
        const wrongName = await serve(OTHER, registry({ images }), { key, cert });
        const e4 = (await pullEvents(ref(wrongName, imgA), { ca: cert })).error;
        expect(e4).toBeInstanceOf(ValidationError);
        expect((e4 as ValidationError).status).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
        altName = `refused (${(e4 as ValidationError).status})`;
      }

      console.log(
        `registry-trust: self-signed https registry ${reg.host}: refused by default (ValidationError ` +
          `"${(e1 as ValidationError).status}", 0 requests past the handshake, 0 blobs committed) and when other ` +
          `hosts are named; pulled with skipTlsVerify=[this host] and with ca; redirect target not named: ` +
          `refused; certificate for another address with the right CA: ${altName}`,
      );
    });
  });
});
