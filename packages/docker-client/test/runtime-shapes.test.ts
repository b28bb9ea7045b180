// DockerRuntime over an engine whose JSON is well-formed but of the wrong shape (null, a number, an array
// for an object, fields of another type): every Runtime method ends in success or a typed berth error,
// never a TypeError from reading the answer.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerClient, DockerRuntime } from "../src/index.js";

let root: string;
let server: Server;
let runtime: DockerRuntime;
/** The JSON text every JSON answer carries in the current case. */
let answer = "null";

const multiplexed = Buffer.from([1, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x62, 0x0a]);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-shapes-docker-"));
  const socket = join(root, "engine.sock");
  server = createServer((req, res) => {
    const url = req.url ?? "";
    if (url.includes("/logs") || url.includes("/attach")) {
      res.writeHead(200, { "content-type": "application/vnd.docker.multiplexed-stream" }).end(multiplexed);
    } else if (url.includes("/events") || url.includes("/stats") || url.includes("/images/create")) {
      res.writeHead(200, { "content-type": "application/json" }).end(`${answer}\n`);
    } else if (/\/(start|stop|kill|pause|unpause)\b/.test(url) || req.method === "DELETE") {
      res.writeHead(204).end();
    } else {
      res.writeHead(200, { "content-type": "application/json" }).end(answer);
    }
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  runtime = new DockerRuntime(
    new DockerClient({ host: `unix://${socket}`, apiVersion: "1.41", timeout: 5_000 }),
  );
});
afterAll(async () => {
  await runtime?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await rm(root, { recursive: true, force: true });
});

const answers = [
  "null",
  "5",
  '"text"',
  "true",
  "[]",
  "[null]",
  "[5]",
  "{}",
  '{"Id":5,"Name":5,"Image":5,"Created":5,"State":"x","Config":5,"NetworkSettings":{"Networks":{"a":null}}}',
  '{"Id":"c","Name":"/n","Created":"x","State":{"Status":5,"StartedAt":5,"Pid":"1","ExitCode":"7"},"Config":{"Labels":{"a":5},"Image":[]}}',
  '[{"Id":5,"Names":"x","Created":"1","Labels":[1],"State":{}}]',
  '{"StatusCode":"0"}',
  '{"Components":5,"Version":5}',
  '{"Components":[null,{"Name":5}]}',
  '{"timeNano":"x","time":"y","Type":5,"Actor":{"ID":5,"Attributes":5}}',
  '{"read":5,"cpu_stats":5,"memory_stats":{"usage":"1"}}',
  '{"Running":"no","ExitCode":"0","Id":5}',
];

const calls: [string, () => Promise<unknown>][] = [
  ["info", () => runtime.info()],
  ["create", () => runtime.create({ image: "img" })],
  ["inspect", () => runtime.inspect("c")],
  ["list", () => runtime.list({ all: true })],
  ["wait", () => runtime.wait("c")],
  ["stats", () => runtime.stats("c")],
  [
    "events",
    async () => {
      for await (const _ of runtime.events()) {
        // read all
      }
    },
  ],
  ["run", () => runtime.run({ image: "img" }, { pull: false })],
  ["pull", () => runtime.pull("127.0.0.1:5000/img:1", { onProgress: () => {} })],
];

describe("DockerRuntime over answers of the wrong shape", () => {
  it("ends every method in success or a typed error", async () => {
    const raw: string[] = [];
    for (const body of answers) {
      answer = body;
      for (const [name, call] of calls) {
        try {
          const value = await call();
          if (name === "inspect") checkInfo(value, `${name} on ${body}`, raw);
          if (name === "list")
            for (const info of value as unknown[]) checkInfo(info, `${name} on ${body}`, raw);
        } catch (err) {
          if (!(err instanceof BerthError)) raw.push(`${name} on ${body}: ${String(err)}`);
        }
      }
    }
    expect(raw).toEqual([]);
  });

  it("exec: an exec inspect that is not an object is a typed error at once", async () => {
    const raw: string[] = [];
    for (const body of ["null", "5", '"text"', "[]", '{"Running":false,"ExitCode":"0"}']) {
      answer = body;
      // exec create reads the same answer: {"Id": ...} is missing, so create fails first on most.
      const err = await runtime.exec("c", ["true"]).catch((e: unknown) => e);
      if (!(err instanceof BerthError)) raw.push(`${body}: ${String(err)}`);
    }
    expect(raw).toEqual([]);
  });
});

/** A ContainerInfo of the documented types, whatever the daemon sent. */
function checkInfo(value: unknown, where: string, raw: string[]): void {
  const info = value as Record<string, unknown>;
  const bad = (what: string) => raw.push(`${where}: ${what}`);
  for (const field of ["id", "name", "image", "state"]) if (typeof info[field] !== "string") bad(field);
  for (const v of Object.values(info.labels as object)) if (typeof v !== "string") bad("labels");
  for (const field of ["createdAt", "startedAt", "finishedAt"]) {
    const d = info[field];
    if (d !== undefined && !(d instanceof Date && !Number.isNaN(d.getTime()))) bad(field);
  }
  for (const field of ["exitCode", "pid"]) {
    if (info[field] !== undefined && typeof info[field] !== "number") bad(field);
  }
}
