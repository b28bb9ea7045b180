// CRI-O's HTTP endpoints answered by a hostile server: bodies past the cap, and JSON of the wrong shape,
// are ProtocolErrors (never a raw TypeError or SyntaxError, never a body read without end).
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProtocolError } from "@berth/runtime-core";
import { afterAll, describe, expect, it } from "vitest";
import { CrioHttpClient } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "berth-crio-hostile-"));
const socketPath = join(dir, "crio.sock");
let answer: (res: import("node:http").ServerResponse) => void = (res) => res.end("{}");
const server = createServer((_req, res) => answer(res));
await new Promise<void>((r) => server.listen(socketPath, r));
afterAll(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});
const client = new CrioHttpClient({ socketPath, timeout: 20_000 });
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe("CRI-O HTTP endpoints, hostile answers", () => {
  it("a body that never ends is cut at the cap with a ProtocolError", async () => {
    let written = 0;
    answer = (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const more = () => {
        while (!res.destroyed && written < 256 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", more);
        }
        res.end();
      };
      res.on("error", () => {});
      more();
    };
    const err = await failure(client.info());
    expect(err).toBeInstanceOf(ProtocolError);
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it("an error body is read only to the cap too", async () => {
    answer = (res) => {
      res.writeHead(500);
      res.on("error", () => {});
      res.end(Buffer.alloc(8 * 1024 * 1024, 0x61));
    };
    const err = (await failure(client.pause("x"))) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message.length).toBeLessThan(70 * 1024);
  });

  it("JSON that is not an object, or a created_time that is not a number, is a ProtocolError", async () => {
    for (const body of ["null", "[]", '"info"', "5"]) {
      answer = (res) => res.end(body);
      expect(await failure(client.info()), body).toBeInstanceOf(ProtocolError);
      expect(await failure(client.inspectContainer("c")), body).toBeInstanceOf(ProtocolError);
    }
    for (const body of ['{"created_time":"abc"}', '{"created_time":{"a":1}}', '{"created_time":1.5}']) {
      answer = (res) => res.end(body);
      expect(await failure(client.inspectContainer("c")), body).toBeInstanceOf(ProtocolError);
    }
  });
});
