// A registry of one image, made up per run (a layer of random bytes, so no daemon holds it yet), that sends
// the layer slowly: a pull through it is still in flight when the test kills the daemon. Plain HTTP on
// 127.0.0.1, which dockerd and berth's registry client treat as insecure without being told.
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A tar archive of one regular file. */
export function tarOf(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) =>
    header.write(value, offset, length, "ascii");
  const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, "0")}\0`;
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(data.length, 12));
  field(136, 12, octal(Math.floor(Date.now() / 1000), 12));
  field(148, 8, "        ");
  field(156, 1, "0");
  field(257, 6, "ustar\0");
  field(263, 2, "00");
  let sum = 0;
  for (const b of header) sum += b;
  field(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, pad, Buffer.alloc(1024)]);
}

export interface SlowRegistry {
  /** host:port */
  readonly host: string;
  /** The image: host:port/faults/big:<tag> */
  readonly image: string;
  readonly layerSize: number;
  /** Bytes per 100 ms for the layer; 0 = full speed. */
  rate: number;
  /** Resolves the next time a client starts reading the layer. */
  layerStarted(): Promise<void>;
  close(): Promise<void>;
}

export async function startSlowRegistry(
  options: { layerBytes?: number; rate?: number } = {},
): Promise<SlowRegistry> {
  const layerTar = tarOf("blob", randomBytes(options.layerBytes ?? 2 * 1024 * 1024));
  const layer = gzipSync(layerTar, { level: 1 });
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["/blob"] },
      rootfs: { type: "layers", diff_ids: [sha256(layerTar)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.docker.distribution.manifest.v2+json",
      config: {
        mediaType: "application/vnd.docker.container.image.v1+json",
        size: config.length,
        digest: sha256(config),
      },
      layers: [
        {
          mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
          size: layer.length,
          digest: sha256(layer),
        },
      ],
    }),
  );
  const tag = randomBytes(4).toString("hex");
  const blobs = new Map([
    [sha256(config), config],
    [sha256(layer), layer],
  ]);
  const layerDigest = sha256(layer);
  let waiters: (() => void)[] = [];

  const reg = {
    rate: options.rate ?? 32 * 1024,
  } as { rate: number };

  const server: Server = createServer((req, res) => {
    const url = req.url ?? "/";
    const head = req.method === "HEAD";
    if (url === "/v2/" || url === "/v2") {
      res.writeHead(200, {
        "content-type": "application/json",
        "docker-distribution-api-version": "registry/2.0",
      });
      res.end(head ? undefined : "{}");
      return;
    }
    const m = /^\/v2\/faults\/big\/(manifests|blobs)\/([^/?]+)$/.exec(url);
    let body: Buffer | undefined;
    let type = "application/octet-stream";
    if (m?.[1] === "manifests" && (m[2] === tag || m[2] === sha256(manifest))) {
      body = manifest;
      type = "application/vnd.docker.distribution.manifest.v2+json";
    } else if (m?.[1] === "blobs") {
      body = blobs.get(m[2] as string);
    }
    if (!body) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "NOT_FOUND", message: "unknown" }] }));
      return;
    }
    const digest = sha256(body);
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ""));
    if (range && m?.[1] === "blobs") start = Math.min(Number(range[1]), body.length);
    const headers = {
      "content-type": type,
      "content-length": String(body.length - start),
      "docker-content-digest": digest,
      "docker-distribution-api-version": "registry/2.0",
      ...(range ? { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    };
    res.writeHead(range ? 206 : 200, headers);
    if (head) {
      res.end();
      return;
    }
    if (digest !== layerDigest || reg.rate === 0) {
      res.end(body.subarray(start));
      return;
    }
    const w = waiters;
    waiters = [];
    for (const resolve of w) resolve();
    let offset = start;
    const rate = reg.rate;
    const timer = setInterval(() => {
      if (res.destroyed) {
        clearInterval(timer);
        return;
      }
      const piece = body.subarray(offset, offset + rate);
      offset += piece.length;
      if (offset >= body.length) {
        clearInterval(timer);
        res.end(piece);
      } else res.write(piece);
    }, 100);
    res.once("close", () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  return Object.assign(reg, {
    host,
    image: `${host}/faults/big:${tag}`,
    layerSize: layer.length,
    layerStarted: () =>
      new Promise<void>((resolve) => {
        waiters.push(resolve);
      }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
