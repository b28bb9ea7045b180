// Credentials never leak into what a failed registry exchange leaves behind: a fixture registry (and its
// token service) on loopback refuses Basic and Bearer credentials, or fails, every way a registry can; the
// error (message, stack, causes, inspected, serialized) and everything printed meanwhile are grepped for
// the password, its encodings, and any token the fixture issued.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  BerthError,
  DaemonError,
  ProtocolError,
  type RegistryCredentials,
  UnauthorizedError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeSecret, SecretScan } from "../../../test/support/secret-scan.js";
import { RegistryClient } from "../src/registry/index.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let origin = "";
let host = "";
/** How the fixture answers /v2/... and /token in the current case. */
let onRegistry: Handler = (_q, res) => res.end();
let onToken: Handler = (_q, res) => res.end();
/** The Authorization headers each side saw. */
const seen: { registry: string[]; token: string[] } = { registry: [], token: [] };

beforeAll(async () => {
  server = createServer((req, res) => {
    const auth = req.headers.authorization ?? "";
    if (req.url?.startsWith("/token")) {
      seen.token.push(auth);
      onToken(req, res);
    } else {
      seen.registry.push(auth);
      onRegistry(req, res);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  host = `127.0.0.1:${port}`;
  origin = `http://${host}`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

const registryError =
  (status: number, code: string, message: string, headers: Record<string, string> = {}): Handler =>
  (_q, res) =>
    res
      .writeHead(status, { "content-type": "application/json", ...headers })
      .end(JSON.stringify({ errors: [{ code, message, detail: null }] }));

/** Challenges every request it gets: the credentials offered are never good enough. */
const refusesBasic = registryError(401, "UNAUTHORIZED", "authentication required", {
  "www-authenticate": 'Basic realm="fixture"',
});
const bearerChallenge = (): Handler =>
  registryError(401, "UNAUTHORIZED", "authentication required", {
    "www-authenticate": `Bearer realm="${origin}/token",service="fixture",scope="repository:app:pull"`,
  });

describe("secrets: containerd-client registry auth", () => {
  it("refused or failing Basic and Bearer auth never carries the password or a token", async () => {
    const s = makeSecret("registry");
    const scan = new SecretScan([s]);
    const issued = `tok-${makeSecret("token").password}`;
    scan.alsoForbid(issued);
    const userPass: RegistryCredentials = { username: s.user, password: s.password, serverAddress: host };
    const cases: Array<{
      name: string;
      creds: RegistryCredentials;
      registry: Handler;
      token?: Handler;
      expected: abstract new (...a: never[]) => BerthError;
    }> = [
      { name: "Basic refused", creds: userPass, registry: refusesBasic, expected: UnauthorizedError },
      {
        name: "Basic accepted, then 403",
        creds: userPass,
        registry: (req, res) =>
          (req.headers.authorization
            ? registryError(403, "DENIED", "requested access to the resource is denied")
            : refusesBasic)(req, res),
        expected: UnauthorizedError,
      },
      {
        name: "Basic accepted, then 500 echoing nothing",
        creds: userPass,
        registry: (req, res) =>
          (req.headers.authorization ? registryError(500, "UNKNOWN", "backend down") : refusesBasic)(
            req,
            res,
          ),
        expected: DaemonError,
      },
      {
        name: "token service refuses the credentials",
        creds: userPass,
        registry: bearerChallenge(),
        token: (_q, res) =>
          res
            .writeHead(401, { "content-type": "application/json" })
            .end('{"details":"incorrect username or password"}'),
        expected: UnauthorizedError,
      },
      {
        name: "token service fails (500)",
        creds: userPass,
        registry: bearerChallenge(),
        token: (_q, res) => res.writeHead(500, { "content-type": "text/plain" }).end("internal error"),
        expected: DaemonError,
      },
      {
        name: "token service answers garbage",
        creds: userPass,
        registry: bearerChallenge(),
        token: (_q, res) => res.writeHead(200, { "content-type": "text/html" }).end(`<html>${issued}`),
        expected: ProtocolError,
      },
      {
        name: "token service drops the connection",
        creds: userPass,
        registry: bearerChallenge(),
        token: (req) => req.socket.destroy(),
        expected: BerthError,
      },
      {
        name: "registry refuses the issued token",
        creds: userPass,
        registry: bearerChallenge(),
        token: (_q, res) =>
          res
            .writeHead(200, { "content-type": "application/json" })
            .end(JSON.stringify({ token: issued, expires_in: 60 })),
        expected: UnauthorizedError,
      },
      {
        name: "registry refuses a static registry token",
        creds: { registryToken: s.password, serverAddress: host },
        registry: bearerChallenge(),
        expected: UnauthorizedError,
      },
      {
        name: "registry drops the connection after the credentials",
        creds: userPass,
        registry: (req, res) => (req.headers.authorization ? req.socket.destroy() : refusesBasic(req, res)),
        expected: BerthError,
      },
    ];
    for (const c of cases) {
      onRegistry = c.registry;
      onToken = c.token ?? ((_q, res) => res.writeHead(404).end());
      seen.registry.length = 0;
      seen.token.length = 0;
      // A fresh client per case: no token cached from the one before.
      const client = new RegistryClient({ credentials: c.creds });
      const err = await scan.failing(c.name, () => client.resolve(`${host}/app:1`));
      expect(err, c.name).toBeInstanceOf(c.expected);
      // The credentials did go out, so this path is one that carries them.
      const sent = [...seen.registry, ...seen.token].join("\n");
      const carried = c.creds.registryToken ?? Buffer.from(`${s.user}:${s.password}`).toString("base64");
      expect(sent, c.name).toContain(carried);
    }
    scan.report("containerd-client registry auth");
  }, 60_000);
});
