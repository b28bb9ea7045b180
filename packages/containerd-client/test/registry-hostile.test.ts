// A hostile registry, token service or redirect target against the registry client: endless bodies,
// oversized manifests and configs, well-formed JSON of the wrong shape, and redirects or token realms that
// point at this host's own services. Small node:http servers on loopback (and, for "a registry that is not
// on this host", on this machine's first non-loopback address) play every part.
import { createHash } from "node:crypto";
import { lookup } from "node:dns/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { hostname } from "node:os";
import {
  DaemonError,
  NotFoundError,
  ProtocolError,
  parseImageRef,
  UnauthorizedError,
  ValidationError,
} from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { type Platform, RegistryClient, type RegistryClientOptions } from "../src/index.js";
import { EXT, type Fixture, type Handler, serve } from "./fixture-server.js";

const PLATFORM: Platform = { os: "linux", architecture: "amd64" };
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const INDEX = "application/vnd.oci.image.index.v1+json";
const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Writes 64 KiB chunks for as long as the client reads (a registry that never ends its body). */
function endless(res: ServerResponse, status = 200, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const pump = () => {
    while (!res.destroyed && res.write(chunk));
  };
  res.on("drain", pump);
  res.write("{");
  pump();
}

const json = (res: ServerResponse, value: unknown, type = MANIFEST, status = 200) => {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { "content-type": type, "content-length": body.length }).end(body);
};

const config = Buffer.from(
  JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: [] } }),
);
const goodManifest = (over: Record<string, unknown> = {}) => ({
  schemaVersion: 2,
  mediaType: MANIFEST,
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
  layers: [],
  ...over,
});

/** A registry serving `manifest` for every manifest GET. */
const manifestRegistry =
  (manifest: (req: IncomingMessage) => unknown, type = MANIFEST): Handler =>
  (req, res) => {
    if (req.url?.includes("/manifests/")) json(res, manifest(req), type);
    else res.writeHead(404).end();
  };

const client = (o: RegistryClientOptions = {}) => new RegistryClient({ credentials: null, ...o });
const resolve = (f: Fixture, o: RegistryClientOptions = {}) =>
  client(o).resolve(`${f.host}/app:1`, { platform: PLATFORM });

describe("registry: every body has a cap", () => {
  it("an endless token-service answer is a ProtocolError and the connection is dropped", async () => {
    let tokenCalls = 0;
    const f: Fixture = await serve((req, res) => {
      if (req.url?.startsWith("/token")) {
        tokenCalls++;
        endless(res);
        return;
      }
      res.writeHead(401, { "www-authenticate": `Bearer realm="${f.origin}/token",service="x"` }).end();
    });
    const err = await resolve(f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/token service.*64 KiB|65536/);
    expect(tokenCalls).toBe(1);
    await expect.poll(() => f.cutOff).toBeGreaterThan(0);
  });

  it("an endless error body (token service or registry) keeps its status's error, with the connection dropped", async () => {
    const f: Fixture = await serve((req, res) => {
      if (req.url?.startsWith("/token")) endless(res, 401);
      else if (req.url?.includes("/other/")) endless(res, 404);
      else res.writeHead(401, { "www-authenticate": `Bearer realm="${f.origin}/token"` }).end();
    });
    const denied = await resolve(f).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(UnauthorizedError);
    const missing = await client()
      .resolve(`${f.host}/other:1`, { platform: PLATFORM })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(((missing as NotFoundError).daemonMessage ?? "").length).toBeLessThanOrEqual(300);
    await expect.poll(() => f.cutOff).toBeGreaterThanOrEqual(2);
  });

  it("a 5 MiB manifest is refused (4 MiB by default, as containerd), and the cap is an option", async () => {
    const big = goodManifest({ annotations: { pad: "x".repeat(5 * 1024 * 1024) } });
    const f = await serve(manifestRegistry(() => big));
    const err = await resolve(f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/larger than 4194304 bytes/);
    // Raised by the caller: accepted.
    const ok = await resolve(f, { maxManifestBytes: 8 * 1024 * 1024 });
    expect(ok.manifest.json.layers).toEqual([]);
    const small = await resolve(f, { maxManifestBytes: 1024 }).catch((e: unknown) => e);
    expect(small).toBeInstanceOf(ProtocolError);
  });

  it("a config larger than the cap is refused before it is fetched", async () => {
    const manifest = goodManifest({
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha("x"), size: 2 ** 40 },
    });
    const f = await serve(manifestRegistry(() => manifest));
    const err = await resolve(f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/config/);
    expect(f.requests.some((r) => r.includes("/blobs/"))).toBe(false);
    // The cap is the caller's to set.
    const tight = goodManifest();
    const g = await serve(manifestRegistry(() => tight));
    await expect(resolve(g, { maxConfigBytes: config.length - 1 })).rejects.toBeInstanceOf(ProtocolError);
    await expect(resolve(g, { maxConfigBytes: config.length })).resolves.toBeDefined();
  });

  it("a config blob that runs on past its declared size is cut off at it, the connection dropped", async () => {
    const f = await serve((req, res) => {
      if (req.url?.includes("/manifests/")) json(res, goodManifest());
      else if (req.url?.includes("/blobs/")) endless(res);
      else res.writeHead(404).end();
    });
    const c = client();
    const resolved = await c.resolve(`${f.host}/app:1`, { platform: PLATFORM });
    const read = async () => {
      for await (const _ of await c.fetchBlob(resolved.ref, resolved.manifest.json.config));
    };
    await expect(read()).rejects.toMatchObject({ code: "DigestMismatch" });
    await expect.poll(() => f.cutOff).toBeGreaterThan(0);
  });
});

describe("registry: documents of the wrong shape are ProtocolErrors", () => {
  const bad: Array<[string, unknown, string?]> = [
    ["null", null],
    ["a number", 5],
    ["a string", "manifest"],
    ["an array", []],
    ["an index whose manifests is 5", { mediaType: INDEX, manifests: 5 }, INDEX],
    ["an index whose manifests hold null", { mediaType: INDEX, manifests: [null] }, INDEX],
    [
      "an index entry's platform without os",
      {
        mediaType: INDEX,
        manifests: [{ mediaType: MANIFEST, digest: sha("m"), size: 1, platform: { architecture: "amd64" } }],
      },
      INDEX,
    ],
    [
      "an index entry's platform that is a string",
      {
        mediaType: INDEX,
        manifests: [{ mediaType: MANIFEST, digest: sha("m"), size: 1, platform: "linux/amd64" }],
      },
      INDEX,
    ],
    [
      "an index entry with a negative size",
      {
        mediaType: INDEX,
        manifests: [{ mediaType: MANIFEST, digest: sha("m"), size: -1, platform: PLATFORM }],
      },
      INDEX,
    ],
    [
      "an index entry whose digest is a path",
      {
        mediaType: INDEX,
        manifests: [
          { mediaType: MANIFEST, digest: "../../../../v2/other/manifests/x", size: 1, platform: PLATFORM },
        ],
      },
      INDEX,
    ],
    ["layers that are not a list", goodManifest({ layers: "a" })],
    ["layers that hold a number", goodManifest({ layers: [7] })],
    ["no config", goodManifest({ config: undefined })],
    ["a config whose digest is a number", goodManifest({ config: { mediaType: "x", digest: 5, size: 1 } })],
    ["a config of 1.5 bytes", goodManifest({ config: { mediaType: "x", digest: sha(config), size: 1.5 } })],
    [
      "a config whose size is a string",
      goodManifest({ config: { mediaType: "x", digest: sha(config), size: "12" } }),
    ],
    [
      "a layer of 2^60 bytes",
      goodManifest({ layers: [{ mediaType: "x", digest: sha("l"), size: 2 ** 60 }] }),
    ],
    ["a mediaType that is a number", goodManifest({ mediaType: 5 })],
    ["annotations that are a list", goodManifest({ annotations: ["a"] })],
  ];
  for (const [name, manifest, type] of bad) {
    it(name, async () => {
      const f = await serve(manifestRegistry(() => manifest, type));
      const err = await resolve(f).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProtocolError);
    });
  }

  it("a token service answering JSON of the wrong shape", async () => {
    for (const body of ["null", "[]", '{"token":{}}', '"tok"', '{"token":""}']) {
      const f: Fixture = await serve((req, res) => {
        if (req.url?.startsWith("/token"))
          res.writeHead(200, { "content-type": "application/json" }).end(body);
        else res.writeHead(401, { "www-authenticate": `Bearer realm="${f.origin}/token"` }).end();
      });
      await expect(resolve(f), body).rejects.toBeInstanceOf(ProtocolError);
    }
  });

  it("an error body of the wrong shape still gives the status's error", async () => {
    for (const body of ['{"errors":"abc"}', '{"errors":[null,5]}', "null", '{"errors":[{"code":5}]}']) {
      const f = await serve((_q, res) =>
        res.writeHead(500, { "content-type": "application/json" }).end(body),
      );
      await expect(resolve(f), body).rejects.toBeInstanceOf(DaemonError);
    }
  });

  it("blob descriptors given by a caller are checked too", async () => {
    const f = await serve((_q, res) => res.writeHead(404).end());
    const ref = parseImageRef(`${f.host}/app:1`);
    await expect(
      client().fetchBlob(ref, { mediaType: "x", digest: "../../etc", size: 1 }),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(f.requests).toEqual([]);
  });
});

describe("registry: redirects and token realms to this host's own addresses", () => {
  /** A blob store on loopback; the registry, elsewhere, sends blob GETs to `target`. */
  async function redirecting(target: (store: Fixture) => string, registryAddress = EXT as string) {
    const blob = Buffer.from("blob");
    const store = await serve((_q, res) => res.writeHead(200).end(blob));
    const reg = await serve((req, res) => {
      if (req.url?.includes("/blobs/")) res.writeHead(307, { location: target(store) }).end();
      else res.writeHead(404).end();
    }, registryAddress);
    return { store, reg, blob, descriptor: { mediaType: "x", digest: sha(blob), size: blob.length } };
  }
  const fetch = async (
    reg: Fixture,
    descriptor: { mediaType: string; digest: string; size: number },
    o = {},
  ) => {
    const c = client({ insecureRegistries: [reg.host], ...o });
    const chunks: Buffer[] = [];
    for await (const b of await c.fetchBlob(parseImageRef(`${reg.host}/app:1`), descriptor)) chunks.push(b);
    return Buffer.concat(chunks);
  };

  it.runIf(EXT)(
    "a registry elsewhere may not redirect to loopback, unless the caller allows it",
    async () => {
      const { store, reg, descriptor, blob } = await redirecting((s) => `${s.origin}/bucket/x`);
      const err = await fetch(reg, descriptor).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(/allowLocalRedirects/);
      expect(store.requests).toEqual([]);
      expect(await fetch(reg, descriptor, { allowLocalRedirects: true })).toEqual(blob);
      expect(store.requests.length).toBe(1);
    },
  );

  it.runIf(EXT)("nor to link-local, unspecified or IPv4-mapped loopback addresses", async () => {
    for (const target of [
      "http://169.254.169.254/latest/meta-data/",
      "http://[fe80::1]/x",
      "http://0.0.0.0:1/x",
      "http://[::]:1/x",
      "http://[::ffff:127.0.0.1]:1/x",
      "http://2130706433:1/x",
      "http://localhost:1/x",
    ]) {
      const { reg, descriptor } = await redirecting(() => target);
      const c = { insecureRegistries: [reg.host, new URL(target).host] };
      const err = await fetch(reg, descriptor, c).catch((e: unknown) => e);
      expect(err, target).toBeInstanceOf(ValidationError);
      expect((err as Error).message, target).toMatch(/loopback, link-local or unspecified/);
    }
  });

  it.runIf(EXT)("nor to a name that resolves to loopback", async () => {
    const name = hostname();
    const addresses = await lookup(name, { all: true }).catch(() => []);
    if (!addresses.some((a) => a.address.startsWith("127."))) return; // this host's name is not loopback here
    const { store, reg, descriptor } = await redirecting((s) => `http://${name}:${s.host.split(":")[1]}/x`);
    const insecure = { insecureRegistries: [reg.host, `${name}:${store.host.split(":")[1]}`] };
    const err = await fetch(reg, descriptor, insecure).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(store.requests).toEqual([]);
  });

  it.runIf(EXT)("a token realm on loopback named by a registry elsewhere is not asked", async () => {
    const realm = await serve((_q, res) => json(res, { token: "t" }, "application/json"));
    const reg = await serve(
      (_q, res) => res.writeHead(401, { "www-authenticate": `Bearer realm="${realm.origin}/token"` }).end(),
      EXT,
    );
    const err = await client({ insecureRegistries: [reg.host] })
      .resolve(`${reg.host}/app:1`, { platform: PLATFORM })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(realm.requests).toEqual([]);
  });

  it.runIf(EXT)("a registry elsewhere may redirect to another host elsewhere", async () => {
    const blob = Buffer.from("elsewhere");
    const store = await serve((_q, res) => res.writeHead(200).end(blob), EXT);
    const reg = await serve((_q, res) => res.writeHead(307, { location: `${store.origin}/b` }).end(), EXT);
    const descriptor = { mediaType: "x", digest: sha(blob), size: blob.length };
    expect(await fetch(reg, descriptor, { insecureRegistries: [reg.host, store.host] })).toEqual(blob);
  });

  it("a registry on loopback may redirect to loopback (local test registries)", async () => {
    const { reg, descriptor, blob } = await redirecting((s) => `${s.origin}/bucket/x`, "127.0.0.1");
    expect(await fetch(reg, descriptor)).toEqual(blob);
  });
});
