// Credentials never leak into what a failed pull leaves behind: a fixture HTTP server pretends to be the
// engine, receives X-Registry-Auth with a unique password and fails the pull every way an engine can; the
// error (message, stack, causes, inspected, serialized) and everything printed meanwhile are grepped for
// the password in each form it travels in.
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortedError,
  BerthError,
  NotFoundError,
  type RegistryCredentials,
  UnauthorizedError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { formsOf, makeSecret, SecretScan } from "../../../test/support/secret-scan.js";
import { DockerClient, pull } from "../src/index.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let root: string;
let server: Server;
let docker: DockerClient;
/** How the fixture engine answers POST /images/create in the current case. */
let onPull: Handler = (_req, res) => res.end();
/** Every X-Registry-Auth the engine received, decoded. */
const received: Record<string, unknown>[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-secrets-docker-"));
  const socket = join(root, "engine.sock");
  server = createServer((req, res) => {
    if (req.url === "/_ping") {
      res.writeHead(200, { "api-version": "1.51", "content-type": "text/plain" }).end("OK");
      return;
    }
    if (req.method === "POST" && req.url?.startsWith("/v1.51/images/create")) {
      const header = req.headers["x-registry-auth"];
      if (typeof header === "string") {
        received.push(
          JSON.parse(Buffer.from(header, "base64url").toString("utf8")) as Record<string, unknown>,
        );
      }
      onPull(req, res);
      return;
    }
    res.writeHead(404, { "content-type": "application/json" }).end('{"message":"page not found"}');
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  docker = new DockerClient({ host: `unix://${socket}`, timeout: 5_000 });
});
afterAll(async () => {
  await docker?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await rm(root, { recursive: true, force: true });
});

const json =
  (status: number, body: unknown): Handler =>
  (_req, res) =>
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

/** The ways an engine fails a pull, and the class each must become. */
function engineFailures(): Array<
  [name: string, handler: Handler, expected: abstract new (...a: never[]) => BerthError]
> {
  const progress = `${JSON.stringify({ status: "Pulling from app", id: "1" })}\n`;
  return [
    [
      "401",
      json(401, {
        message: 'Head "https://r.example/v2/app/manifests/1": unauthorized: incorrect username or password',
      }),
      UnauthorizedError,
    ],
    [
      "500 with a registry message",
      json(500, { message: 'Get "https://r.example/v2/": unauthorized: authentication required' }),
      UnauthorizedError,
    ],
    [
      "404 text",
      (_q, res) =>
        res
          .writeHead(404, { "content-type": "text/plain" })
          .end("pull access denied, repository does not exist"),
      NotFoundError,
    ],
    [
      "500 not found",
      json(500, { message: "manifest for r.example/app:1 not found: manifest unknown" }),
      NotFoundError,
    ],
    [
      "error inside the 200 stream",
      (_q, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.write(progress);
        res.end(
          `${JSON.stringify({ errorDetail: { message: "unauthorized: access denied" }, error: "unauthorized: access denied" })}\n`,
        );
      },
      UnauthorizedError,
    ],
    [
      "connection dropped mid-stream",
      (_q, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.write(progress, () => setTimeout(() => res.socket?.destroy(), 20));
      },
      BerthError,
    ],
    ["connection dropped before headers", (req) => req.socket.destroy(), BerthError],
    [
      "invalid JSON line",
      (_q, res) => res.writeHead(200, { "content-type": "application/json" }).end("{not json\n"),
      BerthError,
    ],
  ];
}

function credentialSets(s: ReturnType<typeof makeSecret>): Array<[string, RegistryCredentials]> {
  return [
    ["username/password", { username: s.user, password: s.password, serverAddress: "r.example" }],
    ["identity token", { identityToken: s.password, serverAddress: "r.example" }],
    ["registry token", { registryToken: s.password, serverAddress: "r.example" }],
  ];
}

describe("secrets: docker-client pull with X-Registry-Auth", () => {
  it("a pull the engine refuses or breaks never carries the password", async () => {
    const s = makeSecret("docker");
    const scan = new SecretScan([s]);
    // What actually goes over the wire for each credential set must not come back either.
    for (const [, creds] of credentialSets(s)) {
      const body = creds.identityToken
        ? { identitytoken: creds.identityToken, serveraddress: creds.serverAddress }
        : creds.registryToken
          ? { registrytoken: creds.registryToken, serveraddress: creds.serverAddress }
          : { username: creds.username, password: creds.password, serveraddress: creds.serverAddress };
      for (const f of formsOf(JSON.stringify(body))) scan.alsoForbid(f);
    }
    for (const [credName, creds] of credentialSets(s)) {
      for (const [name, handler, expected] of engineFailures()) {
        onPull = handler;
        received.length = 0;
        const err = await scan.failing(`pull (${credName}), ${name}`, () =>
          pull(docker, "r.example/app:1", { auth: creds }),
        );
        expect(err, `${credName}, ${name}`).toBeInstanceOf(expected);
        // The credentials did reach the engine: this path is the one that carries them.
        expect(JSON.stringify(received[0]), `${credName}, ${name}`).toContain(s.password);
      }
    }
    // Aborted while the engine hangs.
    onPull = () => {};
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("caller gave up")), 100);
    const aborted = await scan.failing("pull aborted", () =>
      pull(docker, "r.example/app:1", {
        auth: credentialSets(s)[0]?.[1] as RegistryCredentials,
        signal: controller.signal,
      }),
    );
    expect(aborted).toBeInstanceOf(AbortedError);
    scan.report("docker-client pull (X-Registry-Auth)");
  }, 60_000);

  it("credentials from config.json and from a failing helper never show in the pull's error", async () => {
    const s = makeSecret("docker-config");
    const scan = new SecretScan([s]);
    const dir = join(root, "docker-config");
    const bin = join(root, "bin");
    await mkdir(dir, { recursive: true });
    await mkdir(bin, { recursive: true });
    vi.stubEnv("DOCKER_CONFIG", dir);
    vi.stubEnv("PATH", `${bin}:/usr/bin:/bin`);
    try {
      const auth = Buffer.from(`${s.user}:${s.password}`).toString("base64");
      await writeFile(join(dir, "config.json"), JSON.stringify({ auths: { "r.example": { auth } } }));
      onPull = engineFailures()[0]?.[1] as Handler;
      received.length = 0;
      const refused = await scan.failing("pull, auths in config.json, 401", () =>
        pull(docker, "r.example/app:1"),
      );
      expect(refused).toBeInstanceOf(UnauthorizedError);
      expect(received[0]?.password).toBe(s.password);

      // A credential store that prints the credentials and then fails.
      const reply = JSON.stringify({ ServerURL: "r.example", Username: s.user, Secret: s.password });
      await writeFile(
        join(bin, "docker-credential-leaky"),
        `#!/bin/sh\ncat >/dev/null\necho '${reply}'\nexit 1\n`,
      );
      await chmod(join(bin, "docker-credential-leaky"), 0o755);
      await writeFile(
        join(dir, "config.json"),
        JSON.stringify({ credsStore: "leaky", auths: { "r.example": { auth } } }),
      );
      const failed = await scan.failing("pull, credsStore fails after printing", () =>
        pull(docker, "r.example/app:1"),
      );
      expect(failed).toBeInstanceOf(UnauthorizedError);
    } finally {
      vi.unstubAllEnvs();
    }
    scan.report("docker-client pull (config.json, credential helper)");
  }, 30_000);
});
