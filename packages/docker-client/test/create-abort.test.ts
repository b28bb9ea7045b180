// DockerRuntime.create with an AbortSignal that fires while the engine is still creating: the caller gets
// an AbortedError at once, and the container the engine makes anyway is removed once it answers. Before,
// the request was cut and the container stayed (found by the runtime-surface fuzz on Docker and Podman:
// containers created after the abort, named or not, left behind).
import type { IncomingMessage } from "node:http";
import { AbortedError } from "@berth/runtime-core";
import { afterEach, describe, expect, it } from "vitest";
import { serveUnix, type UnixServer } from "../../../test/support/unix-server.js";
import { DockerClient, DockerRuntime } from "../src/index.js";

let server: UnixServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** An engine that answers a create after `delayMs`, and records what it was asked. */
async function slowEngine(delayMs: number) {
  const requests: string[] = [];
  server = await serveUnix((req: IncomingMessage, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    if (req.method === "POST" && req.url?.includes("/containers/create")) {
      setTimeout(
        () => res.writeHead(201, { "content-type": "application/json" }).end('{"Id":"c0ffee"}'),
        delayMs,
      );
    } else if (req.method === "DELETE") {
      res.writeHead(204).end();
    } else {
      res.writeHead(404, { "content-type": "application/json" }).end('{"message":"no such thing"}');
    }
  });
  const rt = new DockerRuntime(new DockerClient({ host: server.host, apiVersion: "1.41" }));
  return { rt, requests };
}

describe("DockerRuntime.create aborted while the engine creates", () => {
  it("rejects at once and removes the container once the engine has made it", async () => {
    const { rt, requests } = await slowEngine(300);
    const t0 = performance.now();
    const err = await rt
      .create({ image: "127.0.0.1:5000/busybox:latest", name: "mine" }, { signal: AbortSignal.timeout(20) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(performance.now() - t0).toBeLessThan(250);
    await rt.close(); // waits for the removal
    expect(requests).toContain("DELETE /v1.41/containers/c0ffee?v=true&force=true");
  });

  it("names a container it creates unnamed, so a create with no answer can be found", async () => {
    const { rt, requests } = await slowEngine(0);
    expect(await rt.create({ image: "127.0.0.1:5000/busybox:latest" })).toBe("c0ffee");
    await rt.close();
    expect(requests.find((r) => r.startsWith("POST"))).toMatch(
      /\/containers\/create\?name=berth-[0-9a-f]{12}$/,
    );
    expect(requests.some((r) => r.startsWith("DELETE"))).toBe(false);
  });
});
