// Memory bounds against a hostile registry (issue 13): a token service, a registry's manifests, error
// bodies and blobs each streaming 256 MiB (BERTH_HOSTILE_MIB) as fast as the client reads. What the
// registry client reads whole is cut at its cap (token answers and error bodies 64 KiB, manifests 4 MiB,
// configs at the size the manifest gives, at most 8 MiB) with a typed error; a layer is streamed. The peak
// growth (test/support/memory-probe.ts) stays under 32 MiB; each case prints a `hostile-input:` line.
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { DigestMismatchError, NotFoundError, ProtocolError, parseImageRef } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import {
  HOSTILE_BYTES,
  HOSTILE_MIB,
  MIB,
  measurePeak,
  pump,
  report,
} from "../../../test/support/memory-probe.js";
import { type BlobDescriptor, type Platform, RegistryClient } from "../src/index.js";
import { type Fixture, serve } from "./fixture-server.js";

const PLATFORM: Platform = { os: "linux", architecture: "amd64" };
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const CONFIG = "application/vnd.oci.image.config.v1+json";
const LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";
const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const T = { timeout: 300_000 };

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

/** Bytes the hostile answer wrote, once it ended or the client hung up. */
let sent: Promise<number> = Promise.resolve(0);
const flood =
  (status: number, block: Buffer, head: Buffer, total = HOSTILE_BYTES): Answer =>
  (_req, res) => {
    res.on("error", () => {});
    res.writeHead(status, { "content-type": "application/json" });
    sent = pump(res, block, total, { head });
  };
const json = (res: ServerResponse, value: unknown, type = MANIFEST, status = 200) => {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { "content-type": type, "content-length": body.length }).end(body);
};

const config = Buffer.from(
  JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { type: "layers" } }),
);
const manifestWith = (configDescriptor: BlobDescriptor, layers: BlobDescriptor[] = []) => ({
  schemaVersion: 2,
  mediaType: MANIFEST,
  config: configDescriptor,
  layers,
});
const honestManifest = manifestWith({ mediaType: CONFIG, digest: sha(config), size: config.length });

/**
 * A registry whose answer to each request is `route`'s; `hostile` is switched on after the honest warm-up,
 * so the paths the call takes are compiled before the baseline.
 */
async function registry(route: (req: IncomingMessage, res: ServerResponse, hostile: boolean) => void) {
  let hostile = false;
  const f: Fixture = await serve((req, res) => route(req, res, hostile));
  return {
    f,
    measure: <T>(run: () => Promise<T>) =>
      measurePeak(run, {
        warm: async () => {
          await run().catch(() => {});
          hostile = true;
        },
      }),
  };
}

const client = () => new RegistryClient({ credentials: null });
const resolve = (f: Fixture) => client().resolve(`${f.host}/app:1`, { platform: PLATFORM });

describe(`a registry streaming ${HOSTILE_MIB} MiB`, () => {
  it("a token service that never ends its answer is cut at 64 KiB: ProtocolError", T, async () => {
    const endless = flood(200, Buffer.alloc(MIB, 0x20), Buffer.from('{"token":"'));
    const { f, measure } = await registry((req, res, hostile) => {
      if (req.url?.startsWith("/token")) {
        if (hostile) endless(req, res);
        else json(res, { token: "t" }, "application/json");
      } else if (!req.headers.authorization) {
        res.writeHead(401, { "www-authenticate": `Bearer realm="${f.origin}/token",service="x"` }).end();
      } else json(res, honestManifest);
    });
    const m = await measure(() => resolve(f));
    report("registry token service answer", await sent, m);
    expect(m.error).toBeInstanceOf(ProtocolError);
    expect(await sent).toBeLessThan(HOSTILE_BYTES);
  });

  it("a manifest that never ends is cut at maxManifestBytes (4 MiB): ProtocolError", T, async () => {
    const endless = flood(200, Buffer.alloc(MIB, 0x20), Buffer.from('{"schemaVersion":2,"x":"'));
    const { f, measure } = await registry((req, res, hostile) =>
      hostile ? endless(req, res) : json(res, honestManifest),
    );
    const m = await measure(() => resolve(f));
    report("registry manifest", await sent, m);
    expect(m.error).toBeInstanceOf(ProtocolError);
    expect((m.error as Error).message).toMatch(/larger than 4194304 bytes/);
  });

  it(`an error body of ${HOSTILE_MIB} MiB is read to 64 KiB: the status's typed error`, T, async () => {
    const endless = flood(404, Buffer.alloc(MIB, 0x20), Buffer.from('{"errors":[{"message":"'));
    const { f, measure } = await registry((req, res, hostile) =>
      hostile ? endless(req, res) : json(res, { errors: [{ message: "unknown" }] }, "application/json", 404),
    );
    const m = await measure(() => resolve(f));
    report("registry error body (404)", await sent, m);
    expect(m.error).toBeInstanceOf(NotFoundError);
    expect(await sent).toBeLessThan(HOSTILE_BYTES);
  });

  it(
    "a config blob that runs past its descriptor is cut at its size (8 MiB at most): DigestMismatchError",
    T,
    async () => {
      // The largest config a manifest may name (maxConfigBytes), and a registry that sends more.
      const big = { mediaType: CONFIG, digest: sha("not this"), size: 8 * MIB };
      const endless = flood(200, Buffer.alloc(MIB, 0x20), Buffer.from("{"));
      const { f, measure } = await registry((req, res, hostile) => {
        if (req.url?.includes("/manifests/")) json(res, hostile ? manifestWith(big) : honestManifest);
        else if (hostile) endless(req, res);
        else res.writeHead(200, { "content-length": config.length }).end(config);
      });
      // As pull reads a config: resolved, fetched whole, parsed.
      const m = await measure(async () => {
        const c = client();
        const { ref, manifest } = await c.resolve(`${f.host}/app:1`, { platform: PLATFORM });
        const chunks: Buffer[] = [];
        for await (const chunk of await c.fetchBlob(ref, manifest.json.config)) chunks.push(chunk);
        return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
      });
      report("registry config blob", await sent, m);
      expect(m.error).toBeInstanceOf(DigestMismatchError);
      expect((m.error as Error).message).toMatch(/longer than its 8388608 bytes/);
    },
  );

  it(`a ${HOSTILE_MIB} MiB layer is streamed and hashed in constant memory`, T, async () => {
    const block = Buffer.alloc(MIB, 0x6c);
    const hash = createHash("sha256");
    for (let i = 0; i < HOSTILE_MIB; i++) hash.update(block);
    const layer = { mediaType: LAYER, digest: `sha256:${hash.digest("hex")}`, size: HOSTILE_BYTES };
    const small = Buffer.alloc(64 * 1024, 0x6c);
    const honest = { mediaType: LAYER, digest: sha(small), size: small.length };
    let hostile = false;
    const f = await serve((req, res) => {
      res.on("error", () => {});
      if (!hostile) res.writeHead(200, { "content-length": small.length }).end(small);
      else {
        res.writeHead(200, { "content-length": HOSTILE_BYTES });
        sent = pump(res, block, HOSTILE_BYTES);
      }
      void req;
    });
    const c = client();
    const ref = parseImageRef(`${f.host}/app:1`);
    let bytes = 0;
    const read = async (d: BlobDescriptor) => {
      bytes = 0;
      for await (const chunk of await c.fetchBlob(ref, d)) bytes += chunk.length;
    };
    const m = await measurePeak(() => read(layer), {
      warm: async () => {
        await read(honest);
        hostile = true;
      },
    });
    report("registry layer blob (streamed, hashed)", await sent, m);
    expect(m.error).toBeUndefined();
    expect(bytes).toBe(HOSTILE_BYTES);
  });
});
