import { DaemonError, NotFoundError, ProtocolError, UnauthorizedError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { serveUnix } from "../../../test/support/unix-server.js";
import { DockerClient } from "../src/index.js";
import { ndjson } from "../src/streams/ndjson.js";

async function* chunks(text: string, size: number): AsyncGenerator<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function all(text: string, size = 3) {
  const out: unknown[] = [];
  for await (const v of ndjson(chunks(text, size), "images.pull")) out.push(v);
  return out;
}

describe("ndjson", () => {
  it("parses objects split across chunks, including multi-byte characters", async () => {
    const text = '{"status":"Pulling ✓"}\n\n{"id":"a","progressDetail":{"current":1}}\r\n{"last":true}';
    for (const size of [1, 2, 5, 100]) {
      expect(await all(text, size)).toEqual([
        { status: "Pulling ✓" },
        { id: "a", progressDetail: { current: 1 } },
        { last: true },
      ]);
    }
  });

  it("throws the error the daemon reports inside a 200 stream", async () => {
    const text =
      '{"status":"Pulling"}\n{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\n';
    await expect(all(text)).rejects.toBeInstanceOf(NotFoundError);
    await expect(all('{"error":"unauthorized: authentication required"}\n')).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
    await expect(all('{"error":"disk full"}\n')).rejects.toBeInstanceOf(DaemonError);
  });

  it("names the operation and keeps the daemon's message", async () => {
    const err = await all('{"error":"disk full"}\n').catch((e: DaemonError) => e);
    expect(err).toMatchObject({ operation: "images.pull", daemonMessage: "disk full" });
  });

  it("rejects a line that is not JSON with a ProtocolError", async () => {
    await expect(all('{"ok":1}\nnot json\n')).rejects.toBeInstanceOf(ProtocolError);
  });

  it("an error object whose fields are not strings is still a typed error (String() of it threw)", async () => {
    for (const line of [
      '{"error":{"toString":1}}',
      '{"errorDetail":{"message":{"valueOf":2}}}',
      '{"error":[1]}',
    ]) {
      const err = await all(`${line}\n`).catch((e: unknown) => e);
      expect(err, line).toBeInstanceOf(DaemonError);
    }
  });

  it("a line longer than maxLineBytes is a ProtocolError, whether it ends or not", async () => {
    const long = `{"status":"${"a".repeat(5000)}"}`;
    const read = async (text: string, size: number) => {
      for await (const _ of ndjson(chunks(text, size), "images.pull", { maxLineBytes: 4096 })) {
        // drain
      }
    };
    for (const size of [1000, 100_000]) {
      await expect(read(`{"a":1}\n${long}\n`, size)).rejects.toThrow(/maxJsonLineBytes/);
      await expect(read(`{"a":1}\n${long}`, size)).rejects.toBeInstanceOf(ProtocolError);
    }
    await expect(read(`{"status":"${"a".repeat(4000)}"}\n`, 7)).resolves.toBeUndefined();
  });

  it("errors inside a stream name the backend that sent them (Podman's were labelled docker)", async () => {
    const lines = [
      '{"status":"Pulling"}\n{"error":"manifest unknown","errorDetail":{"message":"manifest unknown"}}\n',
      '{"status":"Pulling"}\nnot json\n',
      `{"status":"${"a".repeat(300)}"}\n`,
    ];
    let body = "";
    const daemon = await serveUnix((_req, res) =>
      res.writeHead(200, { "content-type": "application/json" }).end(body),
    );
    const podman = new DockerClient({
      host: daemon.host,
      apiVersion: "1.41",
      backend: "podman",
      maxJsonLineBytes: 100,
    });
    try {
      for (const text of lines) {
        body = text;
        const err = await (async () => {
          for await (const _ of await podman.images.pull({ fromImage: "x", tag: "1" }, {})) {
            // drain
          }
        })().catch((e: unknown) => e);
        expect(err, text).toHaveProperty("backend", "podman");
      }
      const direct = await all('{"error":"denied"}\n').catch((e: unknown) => e);
      expect(direct).toHaveProperty("backend", "docker");
      const own = await (async () => {
        for await (const _ of ndjson(chunks('{"error":"denied"}\n', 4), "images.pull", {
          backend: "podman",
        })) {
          // drain
        }
      })().catch((e: unknown) => e);
      expect(own).toHaveProperty("backend", "podman");
    } finally {
      await podman.close();
      await daemon.close();
    }
  });
});
