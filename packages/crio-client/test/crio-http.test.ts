// CRI-O cannot run here (Debian does not package it), so its HTTP endpoints are tested against a fixture
// server on a unix socket that answers with the shapes CRI-O documents and sends: JSON for /info and
// /containers/{id}, TOML for /config, Go's plain-text http.Error bodies for failures.

import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortedError,
  NotFoundError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
  UnsupportedError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CrioHttpClient } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "berth-crio-"));
const socket = join(dir, "crio.sock");
const ID = "a".repeat(64);
const paused = new Set<string>();
/** How the fixture misbehaves: an older CRI-O without pause, a hung daemon, a broken body. */
let mode: "normal" | "old" | "hang" | "garbage" = "normal";

const info = {
  storage_driver: "overlay",
  storage_image: "",
  storage_root: "/var/lib/containers/storage",
  cgroup_driver: "systemd",
  default_id_mappings: { uids: [{ container_id: 0, host_id: 0, size: 4294967295 }], gids: null },
};
// created_time is int64 nanoseconds: written as raw digits, as Go's encoding/json does.
const CREATED = "1700000000123456789";
const container = {
  name: "k8s_app_web-0_default_1234_0",
  pid: 4242,
  image: "docker.io/library/nginx:latest",
  image_ref: "docker.io/library/nginx@sha256:abcd",
  created_time: "@CREATED@",
  labels: { "io.kubernetes.container.name": "app" },
  annotations: { "io.kubernetes.container.hash": "1" },
  crio_annotations: { "io.kubernetes.cri-o.Image": "nginx" },
  log_path: "/var/log/pods/default_web-0_1234/app/0.log",
  root: "/var/lib/containers/storage/overlay/xyz/merged",
  sandbox: "b".repeat(64),
  ip_addresses: ["10.85.0.4"],
};
const config = `
[crio]
root = "/var/lib/containers/storage"
runroot = "/run/containers/storage"
storage_driver = "overlay"
log_dir = "/var/log/crio/pods"

[crio.api]
listen = "/var/run/crio/crio.sock"
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "crun"
cgroup_manager = "systemd"

[crio.runtime.runtimes.crun]
runtime_path = "/usr/bin/crun"
runtime_type = "oci"

[crio.image]
pause_image = "registry.k8s.io/pause:3.9"

[crio.network]
network_dir = "/etc/cni/net.d/"
plugin_dirs = ["/opt/cni/bin/"]
`;

let server: Server;
beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? "/";
    const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    if (mode === "hang") return;
    if (mode === "garbage") return send(200, "<html>", "text/html");
    if (mode === "old" && /^\/(un)?pause\//.test(url)) return send(404, "404 page not found\n");
    if (url === "/info") return send(200, JSON.stringify(info), "application/json");
    if (url === "/config") return send(200, config, "application/toml");
    const inspect = /^\/containers\/(.+)$/.exec(url);
    if (inspect) {
      const m = inspect;
      if (m[1] === ID) {
        return send(200, JSON.stringify(container).replace('"@CREATED@"', CREATED), "application/json");
      }
      return send(404, `can't find the container with id ${m[1]}\n`);
    }
    const m = /^\/(pause|unpause)\/(.+)$/.exec(url);
    if (m) {
      if (m[2] !== ID) return send(500, `could not find container "${m[2]}": container not known\n`);
      if (m[1] === "pause") paused.add(ID);
      else paused.delete(ID);
      return send(200, "");
    }
    send(404, "404 page not found\n");
  });
  await new Promise<void>((r) => server.listen(socket, r));
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("CRI-O HTTP endpoints (fixture server)", () => {
  const crio = new CrioHttpClient({ socketPath: `unix://${socket}` });

  it("GET /info", async () => {
    const i = await crio.info();
    expect(i.storage_driver).toBe("overlay");
    expect(i.cgroup_driver).toBe("systemd");
    expect(i.default_id_mappings?.uids?.[0]?.size).toBe(4294967295);
  });

  it("GET /containers/{id}, and NotFoundError for an unknown id", async () => {
    const c = await crio.inspectContainer(ID);
    expect(c.pid).toBe(4242);
    expect(c.created_time).toBe(1700000000123456789n);
    expect(c.ip_addresses).toEqual(["10.85.0.4"]);
    expect(c.sandbox).toHaveLength(64);
    const err = await crio.inspectContainer("nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).status).toBe(404);
    expect((err as NotFoundError).daemonMessage).toBe("can't find the container with id nope");
  });

  it("GET /config parses crio.conf TOML", async () => {
    const c = await crio.config();
    expect(c.crio?.runtime?.default_runtime).toBe("crun");
    expect(c.crio?.runtime?.runtimes?.crun?.runtime_path).toBe("/usr/bin/crun");
    expect(c.crio?.network?.plugin_dirs).toEqual(["/opt/cni/bin/"]);
    expect(await crio.configText()).toContain("[crio.image]");
  });

  it("pause and unpause; an unknown container is NotFoundError", async () => {
    await crio.pause(ID);
    expect(paused.has(ID)).toBe(true);
    await crio.unpause(ID);
    expect(paused.has(ID)).toBe(false);
    await expect(crio.pause("nope")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("a CRI-O without the endpoint is UnsupportedError, a missing socket UnavailableError", async () => {
    mode = "old";
    try {
      await expect(crio.pause(ID)).rejects.toBeInstanceOf(UnsupportedError);
    } finally {
      mode = "normal";
    }
    await expect(new CrioHttpClient({ socketPath: join(dir, "absent.sock") }).info()).rejects.toBeInstanceOf(
      UnavailableError,
    );
  });

  it("a hung daemon is TimeoutError, an abort AbortedError, a non-JSON body ProtocolError", async () => {
    mode = "hang";
    try {
      const t0 = Date.now();
      await expect(crio.info({ timeout: 150 })).rejects.toBeInstanceOf(TimeoutError);
      expect(Date.now() - t0).toBeLessThan(1000);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      await expect(crio.info({ signal: ac.signal })).rejects.toBeInstanceOf(AbortedError);
      mode = "garbage";
      await expect(crio.info()).rejects.toBeInstanceOf(ProtocolError);
      await expect(crio.config()).rejects.toBeInstanceOf(ProtocolError);
    } finally {
      mode = "normal";
    }
  });
});
