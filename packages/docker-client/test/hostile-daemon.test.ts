// A daemon that lies: a fixture HTTP server on a unix socket plays a broken or compromised engine
// (redirects, trickled bodies, endless bodies and lines, giant frame headers) and records what the client
// sends. Every call must end with a typed berth error, with its connection dropped where the daemon would
// otherwise keep it busy, and no path parameter may leave its endpoint.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Duplex, Readable } from "node:stream";
import {
  AbortedError,
  BerthError,
  DaemonError,
  NotFoundError,
  ProtocolError,
  TimeoutError,
  ValidationError,
} from "@berth/runtime-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { collect, DockerClient, type DockerClientOptions } from "../src/index.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let root: string;
let server: Server;
let socket: string;
/** How the fixture engine answers the current case. */
let handler: Handler = (_req, res) => res.end();
/** Every request line the engine received. */
const seen: string[] = [];
/** Every connection's close, to check the client dropped one. */
const clients: DockerClient[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-hostile-docker-"));
  socket = join(root, "engine.sock");
  server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
});
afterEach(async () => {
  seen.length = 0;
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await rm(root, { recursive: true, force: true });
});

function client(options: DockerClientOptions = {}): DockerClient {
  const c = new DockerClient({ host: `unix://${socket}`, apiVersion: "1.41", ...options });
  clients.push(c);
  return c;
}

/** Resolves when the request's connection is closed (the client dropped it). */
function closed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.socket?.destroyed) resolve();
    else res.socket?.once("close", () => resolve());
  });
}

/** Answers with headers, then writes `chunk` every `ms` until the connection closes. */
function trickle(res: ServerResponse, chunk: string | Uint8Array, ms: number, type = "application/json") {
  res.writeHead(200, { "content-type": type });
  res.write(chunk);
  const timer = setInterval(() => res.write(chunk), ms);
  res.socket?.once("close", () => clearInterval(timer));
}

/** Writes `chunk` as fast as the client reads it, until the connection closes. */
function flood(res: ServerResponse, status: number, chunk: string | Uint8Array, first = "", type?: string) {
  res.writeHead(status, { "content-type": type ?? "application/json" });
  if (first) res.write(first);
  const pump = () => {
    while (!res.destroyed && res.write(chunk)) {
      // until the socket buffer is full
    }
  };
  res.on("drain", pump);
  pump();
}

/** Records the connection of each request, for `closed`. */
let last: ServerResponse | undefined;
const keep =
  (h: Handler): Handler =>
  (req, res) => {
    last = res;
    h(req, res);
  };

/** Reads a stream to its end: what came, and the error it ended with. */
async function readAll<T>(stream: AsyncIterable<T>): Promise<{ got: T[]; err: Error }> {
  const got: T[] = [];
  const err = await failure(
    (async () => {
      for await (const item of stream) got.push(item);
    })(),
  );
  return { got, err };
}

/** Runs `test` while the engine answers upgrades with a 101 and "hello\n" of raw output, then stays
 *  silent; the sockets it upgraded are given to `test` and destroyed after it. */
async function withUpgrades(test: (sockets: Duplex[]) => Promise<void>): Promise<void> {
  const sockets: Duplex[] = [];
  const onUpgrade = (req: IncomingMessage, socket: Duplex) => {
    sockets.push(socket);
    seen.push(`${req.method} ${req.url} upgrade ${req.headers.upgrade}`);
    socket.write(
      "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n" +
        "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello\n",
    );
  };
  server.on("upgrade", onUpgrade);
  try {
    await test(sockets);
  } finally {
    server.off("upgrade", onUpgrade);
    for (const s of sockets) s.destroy();
  }
}

/** Resolves once the client has closed its side of an upgraded connection (the engine's side stays
 *  half-open: http servers allow that). */
async function ended(socket: Duplex): Promise<void> {
  if (!socket.readableEnded) await new Promise((resolve) => socket.once("end", resolve));
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the call to fail");
}

describe("path parameters", () => {
  it("refuses a path parameter that is or holds a `.`/`..` segment, before anything is sent", async () => {
    const docker = client();
    handler = (_req, res) => res.writeHead(204).end();
    for (const id of ["../images/x", "..", ".", "a/../../b", "x/..", "./x", "a/./b"]) {
      const err = await failure(docker.containers.remove({ id }));
      expect(err, id).toBeInstanceOf(ValidationError);
    }
    for (const name of ["../../containers/x", "registry:5000/../x"]) {
      expect(await failure(docker.images.remove({ name })), name).toBeInstanceOf(ValidationError);
    }
    expect(seen).toEqual([]);
  });

  it("percent-encodes a path parameter whole: a slash or a ? cannot start another segment or a query", async () => {
    const docker = client();
    handler = (_req, res) => res.writeHead(200, { "content-type": "application/json" }).end("{}");
    await docker.containers.inspect({ id: "a/b c?x=1#y" });
    await docker.images.inspect({ name: "registry:5000/ns/name:tag" });
    await docker.images.inspect({ name: "registry:5000/ns/name@sha256:abc" });
    await docker.plugins.inspect({ name: "vieux/sshfs:latest" });
    expect(seen).toEqual([
      "GET /v1.41/containers/a%2Fb%20c%3Fx%3D1%23y/json",
      "GET /v1.41/images/registry%3A5000%2Fns%2Fname%3Atag/json",
      "GET /v1.41/images/registry%3A5000%2Fns%2Fname%40sha256%3Aabc/json",
      "GET /v1.41/plugins/vieux%2Fsshfs%3Alatest/json",
    ]);
  });

  it("refuses a path parameter that cannot be encoded (a lone surrogate) with a ValidationError", async () => {
    const docker = client();
    const err = await failure(docker.containers.inspect({ id: "\uD800" }));
    expect(err).toBeInstanceOf(ValidationError);
    expect(seen).toEqual([]);
  });

  it("a header value that would split the request (CR/LF) is a ValidationError, nothing sent", async () => {
    const docker = client();
    const injected = await failure(
      docker.containers.inspect({ id: "c" }, { headers: { x: "a\r\nX-Evil: 1" } }),
    );
    expect(injected).toBeInstanceOf(ValidationError);
    const param = await failure(
      docker.images.build({ contentType: "a\r\nX-Evil: 1", body: new Uint8Array(0) } as never),
    );
    expect(param).toBeInstanceOf(ValidationError);
    expect(seen).toEqual([]);
  });

  it("refuses a pinned API version that is not MAJOR.MINOR", () => {
    expect(() => client({ apiVersion: "1.41/../../x" })).toThrow(ValidationError);
  });
});

describe("statuses outside 2xx", () => {
  const redirect: Handler = (_req, res) =>
    res.writeHead(301, { location: "/v1.41/images/x/json", "content-type": "text/html" }).end("moved");

  it("a 3xx is a ProtocolError for every response kind, never success", async () => {
    const docker = client();
    handler = redirect;
    const calls: [string, () => Promise<unknown>][] = [
      ["json", () => docker.containers.inspect({ id: "c" })],
      ["empty", () => docker.containers.archiveInfo({ id: "c", path: "/" })],
      ["text", () => docker.system.ping()],
      ["ndjson", async () => docker.system.events({})],
      ["stream", async () => docker.containers.logs({ id: "c", stdout: true })],
      ["tar", async () => docker.containers.export({ id: "c" })],
      ["upgrade", async () => docker.containers.attach({ id: "c", stream: true, stdout: true })],
    ];
    for (const [kind, call] of calls) {
      const err = await failure(call());
      expect(err, kind).toBeInstanceOf(ProtocolError);
      expect(err.message, kind).toMatch(/301/);
    }
  });

  it("a 304 is success where the API defines it (start, stop) and a ProtocolError elsewhere", async () => {
    const docker = client();
    handler = (_req, res) => res.writeHead(304).end();
    await expect(docker.containers.start({ id: "c" })).resolves.toBeUndefined();
    await expect(docker.containers.stop({ id: "c" })).resolves.toBeUndefined();
    expect(await failure(docker.containers.pause({ id: "c" }))).toBeInstanceOf(ProtocolError);
  });

  it("an upgrade the daemon refuses with a 404 is a NotFoundError carrying its message", async () => {
    const docker = client();
    handler = (_req, res) =>
      res.writeHead(404, { "content-type": "application/json" }).end('{"message":"No such container: c"}');
    const err = await failure(docker.containers.attach({ id: "c", stream: true, stdout: true }));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toMatch(/No such container: c/);
  });
});

describe("deadlines", () => {
  it("timeout is a total deadline: a JSON body trickled a byte at a time is a TimeoutError, the connection dropped", async () => {
    const docker = client({ timeout: 400 });
    handler = keep((_req, res) => trickle(res, " ", 50));
    const err = await failure(docker.containers.inspect({ id: "c" }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toMatch(/containers\.inspect/);
    await closed(last as ServerResponse);
  });

  it("a per-call timeout overrides the client's, and 0 means none", async () => {
    const docker = client({ timeout: 60_000 });
    handler = keep((_req, res) => trickle(res, " ", 50));
    expect(await failure(docker.containers.list({}, { timeout: 300 }))).toBeInstanceOf(TimeoutError);
    // No deadline: the call runs until the body ends.
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("[");
      setTimeout(() => res.end("]"), 300);
    };
    await expect(docker.containers.list({}, { timeout: 0 })).resolves.toEqual([]);
  });

  it("an upload's own time is not counted: the deadline runs from the end of a streamed request body", async () => {
    const docker = client({ timeout: 300 });
    /** A request body that takes `ms` to send. */
    const slowBody = (ms: number) =>
      Readable.from(
        (async function* () {
          for (let i = 0; i < 5; i++) {
            await new Promise((r) => setTimeout(r, ms / 5));
            yield new Uint8Array(512);
          }
        })(),
      );
    // putArchive (JSON answer): the daemon answers once the upload is in.
    handler = (req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
    };
    await expect(docker.containers.putArchive({ id: "c", path: "/", body: slowBody(800) })).resolves.toEqual(
      {},
    );
    // ... and then stalls: the deadline, counted from the end of the upload, ends it.
    handler = keep((req) => req.resume());
    const err = await failure(docker.containers.putArchive({ id: "c", path: "/", body: slowBody(400) }));
    expect(err).toBeInstanceOf(TimeoutError);
    // load (a stream): headers before the upload ends, then progress past the deadline, is no timeout.
    handler = (req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/json" });
      res.flushHeaders();
      let n = 0;
      const timer = setInterval(() => {
        if (++n < 12) res.write('{"stream":"."}\n');
        else {
          clearInterval(timer);
          res.end();
        }
      }, 60);
    };
    const got: unknown[] = [];
    for await (const line of await docker.images.load({ body: slowBody(200) })) got.push(line);
    expect(got).toHaveLength(11);
  });

  it("a stream silent for idleTimeout is a TimeoutError, per call or the client's default", async () => {
    handler = keep((req, res) => {
      if (req.url?.includes("/events")) {
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"Type":"container"}\n');
        return;
      }
      res.writeHead(200, { "content-type": "application/vnd.docker.multiplexed-stream" });
      res.write(Buffer.from([1, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x62, 0x0a]));
    });
    const perCall = client();
    const stream = await perCall.containers.logs(
      { id: "c", follow: true, stdout: true },
      { idleTimeout: 300 },
    );
    expect(await failure(collect(stream))).toBeInstanceOf(TimeoutError);
    await closed(last as ServerResponse);
    const byDefault = client({ idleTimeout: 300 });
    const { got, err } = await readAll(await byDefault.system.events({}));
    expect(got).toEqual([{ Type: "container" }]);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toMatch(/idleTimeout/);
    await closed(last as ServerResponse);
  });

  it("an upgraded connection (attach) silent for idleTimeout is a TimeoutError, the connection dropped", async () => {
    await withUpgrades(async (sockets) => {
      const docker = client();
      const attached = await docker.containers.attach(
        { id: "c", stream: true, stdout: true },
        { idleTimeout: 300 },
      );
      const { got, err } = await readAll(attached);
      expect(Buffer.concat(got.map((f) => f.data)).toString()).toBe("hello\n");
      expect(err).toBeInstanceOf(TimeoutError);
      expect(err.message).toMatch(/sent nothing for 300 ms/);
      await ended(sockets[0] as Duplex);
    });
  });

  it("an upgraded connection (exec with stdin) ends when the caller aborts, its socket destroyed", async () => {
    await withUpgrades(async (sockets) => {
      const docker = client();
      const controller = new AbortController();
      const up = await docker.exec.startUpgraded(
        { id: "e", body: { Detach: false, Tty: true } },
        { signal: controller.signal },
      );
      expect(seen).toEqual(["POST /v1.41/exec/e/start upgrade tcp"]);
      const reading = readAll(up);
      setTimeout(() => controller.abort(new Error("caller gave up")), 100);
      const { got, err } = await reading;
      expect(Buffer.concat(got.map((f) => f.data)).toString()).toBe("hello\n");
      expect(err).toBeInstanceOf(AbortedError);
      expect(up.socket.destroyed).toBe(true);
      await ended(sockets[0] as Duplex);
    });
  });

  it("without idleTimeout a quiet follow stays open until the caller aborts", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.docker.multiplexed-stream" });
      res.flushHeaders();
    };
    const docker = client({ timeout: 200 });
    const signal = AbortSignal.timeout(800);
    const stream = await docker.containers.logs({ id: "c", follow: true, stdout: true }, { signal });
    expect(await failure(collect(stream))).toBeInstanceOf(AbortedError);
  });

  it("a deadline that passes before the headers of a stream is a TimeoutError", async () => {
    handler = () => {};
    const docker = client({ timeout: 200 });
    const err = await failure(docker.containers.logs({ id: "c", follow: true, stdout: true }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toMatch(/within 200 ms/);
  });
});

describe("size caps", () => {
  it("a JSON body past maxJsonBytes is a ProtocolError, the connection dropped", async () => {
    const docker = client({ maxJsonBytes: 1 << 20 });
    handler = keep((_req, res) => flood(res, 200, '{"Id":"x"},'.repeat(1000), "["));
    const err = await failure(docker.containers.list({}));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/maxJsonBytes/);
    await closed(last as ServerResponse);
  });

  it("an error body is read up to 64 KiB, the connection dropped", async () => {
    const docker = client();
    handler = keep((_req, res) => flood(res, 500, "x".repeat(4096), "", "text/plain"));
    const err = await failure(docker.containers.inspect({ id: "c" }));
    expect(err).toBeInstanceOf(DaemonError);
    expect(err.message.length).toBeLessThanOrEqual(64 * 1024 + 100);
    await closed(last as ServerResponse);
    handler = keep((_req, res) => flood(res, 404, "x".repeat(4096), "", "text/plain"));
    expect(await failure(docker.containers.logs({ id: "c", stdout: true }))).toBeInstanceOf(NotFoundError);
    await closed(last as ServerResponse);
  });

  it("the /_ping body is capped", async () => {
    const docker = new DockerClient({ host: `unix://${socket}` });
    clients.push(docker);
    handler = keep((_req, res) => flood(res, 200, "O".repeat(4096), "", "text/plain"));
    expect(await failure(docker.apiVersion())).toBeInstanceOf(ProtocolError);
    await closed(last as ServerResponse);
  });

  it("an NDJSON line past maxJsonLineBytes is a ProtocolError, the connection dropped", async () => {
    const docker = client({ maxJsonLineBytes: 256 * 1024 });
    handler = keep((_req, res) => flood(res, 200, "a".repeat(4096), '{"status":"ok"}\n{"status":"'));
    const { got, err } = await readAll(await docker.system.events({}));
    expect(got).toEqual([{ status: "ok" }]);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/maxJsonLineBytes/);
    await closed(last as ServerResponse);
  });

  it("a tar body cut short fails its Readable with a typed error", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/x-tar", "content-length": "100000" });
      res.write(Buffer.alloc(1000));
      setTimeout(() => res.destroy(), 20);
    };
    const docker = client();
    const err = await failure(
      (async () => {
        for await (const _ of await docker.containers.export({ id: "c" })) {
          // read
        }
      })(),
    );
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).operation).toBe("containers.export");
  });

  it("a frame header declaring a 4 GiB frame is streamed in views, never allocated up front", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.docker.multiplexed-stream" });
      res.write(Buffer.from([1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
      res.end(Buffer.alloc(1 << 20, 0x61));
    };
    const docker = client();
    const { got, err } = await readAll(await docker.containers.logs({ id: "c", stdout: true }));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/ended inside a frame/);
    // Handed out as views of the chunks as they came, a frame's worth never gathered.
    expect(got.reduce((n, f) => n + f.data.byteLength, 0)).toBe(1 << 20);
    expect(got.length).toBeGreaterThan(1);
    expect(Math.max(...got.map((f) => f.data.byteLength))).toBeLessThan(1 << 20);
  });
});
