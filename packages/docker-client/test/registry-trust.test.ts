// What docker-client sends an engine about registries, against a stand-in engine on a unix socket that
// records every request: credentials go only with an image of the registry they name (the pull verb,
// DockerRuntime.pull, and the raw operations that carry X-Registry-Auth), and an engine's report of a
// tampered layer, inside the pull's 200 stream or as a status, is a DigestMismatchError.
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  DigestMismatchError,
  DOCKER_HUB_AUTH_SERVER,
  type RegistryCredentials,
  UnauthorizedError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { serveUnix, type UnixServer } from "../../../test/support/unix-server.js";
import { DockerClient, DockerRuntime, pull } from "../src/index.js";

interface Seen {
  method: string;
  url: string;
  /** X-Registry-Auth, decoded. */
  auth: Record<string, unknown> | undefined;
}

let server: UnixServer;
let docker: DockerClient;
const seen: Seen[] = [];
/** How the stand-in answers POST /images/create. */
let onPull: (req: IncomingMessage, res: ServerResponse) => void;
const ok = (_req: IncomingMessage, res: ServerResponse) =>
  res.writeHead(200, { "content-type": "application/json" }).end('{"status":"done"}\n');

beforeAll(async () => {
  server = await serveUnix((req, res) => {
    const header = req.headers["x-registry-auth"];
    seen.push({
      method: req.method ?? "",
      url: req.url ?? "",
      auth:
        typeof header === "string"
          ? (JSON.parse(Buffer.from(header, "base64url").toString("utf8")) as Record<string, unknown>)
          : undefined,
    });
    if (req.url === "/_ping") {
      res.writeHead(200, { "api-version": "1.41", "content-type": "text/plain" }).end("OK");
      return;
    }
    if (req.method === "POST" && req.url?.startsWith("/v1.41/images/create")) {
      onPull(req, res);
      return;
    }
    if (req.method === "GET" && /\/images\/.+\/json$/.test(req.url ?? "")) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"message":"No such image"}');
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
  docker = new DockerClient({ host: server.host, timeout: 5_000 });
});
afterAll(async () => {
  await docker?.close();
  await server?.close();
});
beforeEach(() => {
  seen.length = 0;
  onPull = ok;
});

const secret = "s3cret-of-the-app";
const creds = (serverAddress?: string): RegistryCredentials =>
  ({
    username: "app",
    password: secret,
    ...(serverAddress === undefined ? {} : { serverAddress }),
  }) as RegistryCredentials;
const pulls = () => seen.filter((s) => s.url.includes("/images/create"));

describe("credentials go only to the registry they name", () => {
  it("the pull verb and DockerRuntime.pull refuse credentials for another registry, sending nothing", async () => {
    const runtime = new DockerRuntime(docker);
    const cases: Array<[image: string, serverAddress: string]> = [
      ["evil.example/app:1", DOCKER_HUB_AUTH_SERVER],
      ["evil.example/app:1", "ghcr.io"],
      ["busybox", "ghcr.io"],
      ["127.0.0.1:5001/app", "127.0.0.1:5000"],
    ];
    for (const [image, serverAddress] of cases) {
      for (const [name, call] of [
        ["pull", () => pull(docker, image, { auth: creds(serverAddress) })],
        ["DockerRuntime.pull", () => runtime.pull(image, { auth: creds(serverAddress) })],
        [
          "DockerRuntime.run",
          () => runtime.run({ image, command: ["true"] }, { auth: creds(serverAddress) }),
        ],
      ] as const) {
        const err = await call().catch((e: unknown) => e);
        expect(err, `${name} ${image} with ${serverAddress}`).toBeInstanceOf(UnauthorizedError);
        expect((err as Error).message).toMatch(/not sent to another registry/);
        expect((err as Error).message).not.toContain(secret);
        expect(pulls(), `${name} ${image} with ${serverAddress}`).toEqual([]);
        seen.length = 0;
        expect(seen.filter((s) => s.auth !== undefined)).toEqual([]);
      }
    }
  });

  it("sends them with an image of their registry, Docker Hub under any of its names", async () => {
    for (const [image, serverAddress] of [
      ["busybox", DOCKER_HUB_AUTH_SERVER],
      ["docker.io/library/busybox", "index.docker.io"],
      ["index.docker.io/org/app:1", "docker.io"],
      ["127.0.0.1:5000/app", "http://127.0.0.1:5000/v2/"],
    ] as const) {
      seen.length = 0;
      await pull(docker, image, { auth: creds(serverAddress) });
      expect(pulls()[0]?.auth, image).toEqual({
        username: "app",
        password: secret,
        serveraddress: serverAddress,
      });
    }
  });

  it("takes credentials without serverAddress to be for the image's own registry", async () => {
    for (const [image, serverAddress] of [
      ["busybox", DOCKER_HUB_AUTH_SERVER],
      ["127.0.0.1:5000/app:1", "127.0.0.1:5000"],
    ] as const) {
      seen.length = 0;
      await new DockerRuntime(docker).pull(image, { auth: creds() });
      expect(pulls()[0]?.auth, image).toEqual({
        username: "app",
        password: secret,
        serveraddress: serverAddress,
      });
    }
  });

  it("the raw operations that carry X-Registry-Auth refuse another registry's credentials too", async () => {
    const registryAuth = { username: "app", password: secret, serveraddress: "ghcr.io" };
    const refused: Array<[string, () => Promise<unknown>]> = [
      ["images.pull", () => docker.images.pull({ fromImage: "evil.example/app", tag: "1", registryAuth })],
      ["images.push", () => docker.images.push({ name: "evil.example/app", tag: "1", registryAuth })],
      ["plugins.pull", () => docker.plugins.pull({ remote: "evil.example/plugin:1", registryAuth })],
      [
        "plugins.upgrade",
        () => docker.plugins.upgrade({ name: "p", remote: "evil.example/plugin:2", registryAuth, body: [] }),
      ],
      [
        "services.create",
        () =>
          docker.services.create({
            registryAuth,
            body: { TaskTemplate: { ContainerSpec: { Image: "evil.example/app:1" } } },
          }),
      ],
      [
        "services.update",
        () =>
          docker.services.update({
            id: "svc",
            version: 1,
            registryAuth,
            body: { TaskTemplate: { ContainerSpec: { Image: "busybox" } } },
          }),
      ],
    ];
    for (const [name, call] of refused) {
      const err = await call().catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(UnauthorizedError);
      expect(seen, name).toEqual([]);
    }
    // The same credentials with an image of their registry, or without a serveraddress, are sent.
    await docker.images.push({ name: "ghcr.io/org/app", tag: "1", registryAuth });
    const { serveraddress: _, ...noAddress } = registryAuth;
    await docker.images.push({ name: "evil.example/app", tag: "1", registryAuth: noAddress });
    expect(seen.filter((s) => s.url.includes("/push")).map((s) => s.auth)).toEqual([registryAuth, noAddress]);
  });
});

describe("a tampered layer is a DigestMismatchError", () => {
  const expected = `sha256:${"1".repeat(64)}`;
  const actual = `sha256:${"2".repeat(64)}`;
  const stream =
    (message: string) =>
    (_req: IncomingMessage, res: ServerResponse): void => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(`${JSON.stringify({ status: "Verifying Checksum", id: "1" })}\n`);
      res.end(`${JSON.stringify({ errorDetail: { message }, error: message })}\n`);
    };

  it("reads Docker's and Podman's words, in the 200 stream and as a status", async () => {
    const cases: Array<[string, (req: IncomingMessage, res: ServerResponse) => void, string]> = [
      [
        "Docker, in the stream",
        stream(`filesystem layer verification failed for digest ${expected}`),
        "unknown",
      ],
      [
        "Podman, in the stream",
        stream(
          `writing blob: storing blob to file "/tmp/1": happened during read: Digest did not match, expected ${expected}, got ${actual}`,
        ),
        actual,
      ],
      [
        "a 500",
        (_req, res) =>
          res
            .writeHead(500, { "content-type": "application/json" })
            .end(JSON.stringify({ message: `image config verification failed for digest ${expected}` })),
        "unknown",
      ],
    ];
    for (const [name, handler, got] of cases) {
      onPull = handler;
      const err = await pull(docker, "127.0.0.1:5000/app:1", { auth: false }).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(DigestMismatchError);
      expect(err, name).toMatchObject({ expected, actual: got, operation: "images.pull" });
      expect((err as Error).message, name).toContain(expected);
    }
  });
});
