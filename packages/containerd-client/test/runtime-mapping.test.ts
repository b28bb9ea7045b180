// The pure parts of ContainerdRuntime: ContainerSpec → OCI spec, cgroup metrics, filters, events,
// pull progress, signals and the logger's stdio URI.
import { UnsupportedError, ValidationError } from "@berth/runtime-core";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import {
  buildSpec,
  CGROUPS_V1_METRICS,
  CGROUPS_V2_METRICS,
  type ContainerdEvent,
  checkContainerId,
  containerSpecOpts,
  decodeCgroupMetrics,
  labelFilter,
  loggerUri,
  type ociImageSpec,
  processArgs,
  pullProgressOf,
  runtimeEventOf,
  signalNumber,
  withImageConfig,
} from "../src/index.js";

const image: ociImageSpec.ImageConfig = {
  architecture: "amd64",
  os: "linux",
  rootfs: { type: "layers", diff_ids: [] },
  config: {
    Entrypoint: ["/entry"],
    Cmd: ["default", "args"],
    Env: ["PATH=/bin", "FROM_IMAGE=1"],
    WorkingDir: "/app",
    User: "app",
  },
};
const passwd =
  "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
const ctx = { id: "c1", namespace: "ns", passwd, group: "" };
const build = (spec: Parameters<typeof containerSpecOpts>[0], id = "c1") =>
  buildSpec(ctx, withImageConfig(image), ...containerSpecOpts(spec, image, id));

describe("process arguments, as Docker builds them", () => {
  it("keeps the image's entrypoint and cmd when the spec gives neither", () => {
    expect(processArgs({}, image)).toEqual(["/entry", "default", "args"]);
  });
  it("a command replaces the image's Cmd under its Entrypoint", () => {
    expect(processArgs({ command: ["x"] }, image)).toEqual(["/entry", "x"]);
  });
  it("an entrypoint replaces both the image's Entrypoint and Cmd", () => {
    expect(processArgs({ entrypoint: ["sh"] }, image)).toEqual(["sh"]);
    expect(processArgs({ entrypoint: ["sh"], command: ["-c", "true"] }, image)).toEqual(["sh", "-c", "true"]);
    expect(processArgs({ entrypoint: [], command: ["true"] }, image)).toEqual(["true"]);
  });
  it("nothing to run is a ValidationError", () => {
    expect(() => processArgs({ entrypoint: [] }, image)).toThrow(ValidationError);
    expect(() => processArgs({}, { ...image, config: {} })).toThrow(ValidationError);
  });
});

describe("ContainerSpec → OCI spec", () => {
  it("applies env over the image's, workdir, numeric and named users", () => {
    const s = build({ image: "x", env: { FOO: "bar", FROM_IMAGE: "2" }, workdir: "/tmp", user: "65534" });
    expect(s.process?.env).toEqual(["PATH=/bin", "FROM_IMAGE=2", "FOO=bar"]);
    expect(s.process?.cwd).toBe("/tmp");
    expect(s.process?.user).toEqual({ uid: 65534, gid: 65534 });
    expect(build({ image: "x" }).process?.user).toEqual({ uid: 1000, gid: 1001 });
    expect(build({ image: "x", user: "nobody" }).process?.user).toEqual({ uid: 65534, gid: 65534 });
  });
  it("an unknown user name is a ValidationError", () => {
    expect(() => build({ image: "x", user: "berth-no-such-user" })).toThrow(ValidationError);
  });
  it("maps mounts, limits, tty and host network", () => {
    const s = build({
      image: "x",
      mounts: [
        { type: "bind", source: "/src", target: "/dst", readonly: true },
        { type: "tmpfs", target: "/scratch", size: 1024 },
      ],
      memory: 64 * 1024 * 1024,
      cpus: 0.5,
      tty: true,
      network: "host",
    });
    expect(s.mounts).toContainEqual({
      destination: "/dst",
      type: "bind",
      source: "/src",
      options: ["rbind", "ro"],
    });
    expect(s.mounts).toContainEqual({
      destination: "/scratch",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "nodev", "mode=1777", "size=1024"],
    });
    expect(s.linux?.resources?.memory?.limit).toBe(64 * 1024 * 1024);
    expect(s.linux?.resources?.cpu).toMatchObject({ quota: 50_000, period: 100_000 });
    expect(s.process?.terminal).toBe(true);
    expect(s.linux?.namespaces?.some((n) => n.type === "network")).toBe(false);
    expect(s.hostname).toBeUndefined();
  });
  it("without a network: a private network namespace and a hostname of its own", () => {
    for (const network of [undefined, "none"]) {
      const s = build({ image: "x", ...(network ? { network } : {}) }, "0123456789abcdef");
      expect(s.linux?.namespaces?.some((n) => n.type === "network")).toBe(true);
      expect(s.hostname).toBe("0123456789ab");
    }
    expect(build({ image: "x", name: "web-1" }, "web-1").hostname).toBe("web-1");
  });
  it("refuses what containerd cannot do with UnsupportedError", () => {
    expect(() => containerSpecOpts({ image: "x", ports: [{ containerPort: 80 }] }, image, "c")).toThrow(
      UnsupportedError,
    );
    for (const network of ["bridge", "my-net"]) {
      expect(() => containerSpecOpts({ image: "x", network }, image, "c")).toThrow(UnsupportedError);
    }
    expect(() => containerSpecOpts({ image: "x", stdin: true }, image, "c")).toThrow(UnsupportedError);
    expect(() => containerSpecOpts({ image: "x", stdin: true, tty: true }, image, "c")).not.toThrow();
    expect(() => containerSpecOpts({ image: "x", pod: "p" }, image, "c")).toThrow(UnsupportedError);
  });
  it("container names must be containerd identifiers", () => {
    expect(() => checkContainerId("web-1.a_b")).not.toThrow();
    for (const bad of ["", "-x", "a b", "a..b", "x".repeat(77), "ü"]) {
      expect(() => checkContainerId(bad)).toThrow(ValidationError);
    }
  });
});

function message(build: (w: BinaryWriter) => void): Uint8Array {
  const w = new BinaryWriter();
  build(w);
  return w.finish();
}
const nested = (w: BinaryWriter, field: number, inner: Uint8Array) => w.uint32((field << 3) | 2).bytes(inner);
const u64 = (w: BinaryWriter, field: number, v: bigint | number) => w.uint32(field << 3).uint64(v);

describe("cgroup metrics", () => {
  it("reads cgroups v1 Metrics", () => {
    const value = message((w) => {
      nested(
        w,
        1,
        message((h) => u64(h, 1, 5)),
      ); // hugetlb, skipped
      nested(
        w,
        2,
        message((p) => {
          u64(p, 1, 3);
          u64(p, 2, 100);
        }),
      );
      nested(
        w,
        3,
        message((c) =>
          nested(
            c,
            1,
            message((u) => {
              u64(u, 1, 123_456_789n);
              u64(u, 2, 1);
              u.uint32((4 << 3) | 2).bytes(new Uint8Array([1, 2])); // per_cpu, packed
            }),
          ),
        ),
      );
      nested(
        w,
        4,
        message((m) => {
          u64(m, 1, 999); // cache
          u64(m, 18, 7);
          nested(
            m,
            33,
            message((e) => {
              u64(e, 1, 9223372036854771712n); // no limit
              u64(e, 2, 4096 * 300);
            }),
          );
        }),
      );
      w.uint32((9 << 3) | 5).fixed32(1); // an unknown fixed32 field, skipped
    });
    expect(decodeCgroupMetrics(CGROUPS_V1_METRICS, value)).toEqual({
      cpuNanos: 123_456_789,
      memoryBytes: 4096 * 300,
      pids: 3,
      pidsLimit: 100,
    });
  });
  it("reads cgroups v2 Metrics (with the types.containerd.io prefix too)", () => {
    const value = message((w) => {
      nested(
        w,
        1,
        message((p) => u64(p, 1, 2)),
      );
      nested(
        w,
        2,
        message((c) => {
          u64(c, 1, 1500);
          u64(c, 2, 1000);
        }),
      );
      nested(
        w,
        4,
        message((m) => {
          u64(m, 1, 10);
          u64(m, 32, 2_000_000);
          u64(m, 33, 64 * 1024 * 1024);
        }),
      );
    });
    expect(decodeCgroupMetrics(`types.containerd.io/${CGROUPS_V2_METRICS}`, value)).toEqual({
      cpuNanos: 1_500_000,
      memoryBytes: 2_000_000,
      memoryLimitBytes: 64 * 1024 * 1024,
      pids: 2,
    });
    const unlimited = message((w) =>
      nested(
        w,
        4,
        message((m) => u64(m, 33, 2n ** 64n - 1n)),
      ),
    );
    expect(decodeCgroupMetrics(CGROUPS_V2_METRICS, unlimited)).toEqual({});
  });
  it("an unknown type or a truncated message is a ProtocolError", () => {
    expect(() => decodeCgroupMetrics("io.example.Other", new Uint8Array())).toThrow(/unknown metrics type/);
    expect(() => decodeCgroupMetrics(CGROUPS_V1_METRICS, new Uint8Array([0x12, 0x05, 0x08]))).toThrow(
      /malformed/,
    );
  });
});

describe("filters, events, progress, signals", () => {
  it("label filters quote keys and values, one filter so that all must match", () => {
    expect(labelFilter(undefined)).toEqual([]);
    expect(labelFilter({ "berth.pick": "a", x: 'q"b' })).toEqual([
      `labels."berth.pick"=="a",labels."x"=="q\\"b"`,
    ]);
  });
  it("maps containerd events", () => {
    const at = new Date("2026-01-01T00:00:00Z");
    const ev = (topic: string, event: unknown): ContainerdEvent => ({
      timestamp: at,
      namespace: "ns",
      topic,
      type: "",
      event,
      raw: new Uint8Array(),
    });
    expect(runtimeEventOf(ev("/containers/create", { id: "c1", image: "img", runtime: undefined }))).toEqual({
      time: at,
      type: "container",
      action: "create",
      id: "c1",
      attributes: { image: "img" },
    });
    expect(
      runtimeEventOf(
        ev("/tasks/exit", { containerId: "c1", id: "c1", pid: 42, exitStatus: 3, exitedAt: at }),
      ),
    ).toEqual({
      time: at,
      type: "task",
      action: "exit",
      id: "c1",
      attributes: { pid: "42", exitCode: "3", exitedAt: at.toISOString() },
    });
    expect(
      runtimeEventOf(ev("/tasks/exit", { containerId: "c1", id: "exec-1", pid: 7, exitStatus: 0 }))
        ?.attributes,
    ).toEqual({ pid: "7", exitCode: "0", execId: "exec-1" });
    expect(runtimeEventOf(ev("/tasks/exec-added", { containerId: "c1", execId: "e" }))).toMatchObject({
      action: "exec-added",
      attributes: { execId: "e" },
    });
    expect(runtimeEventOf(ev("/images/create", { name: "x" }))).toBeUndefined();
  });
  it("maps pull progress", () => {
    expect(pullProgressOf({ type: "lease", id: "l" })).toBeUndefined();
    expect(
      pullProgressOf({ type: "blob-progress", kind: "layer", digest: "sha256:a", offset: 5, size: 10 }),
    ).toEqual({ id: "sha256:a", status: "downloading", current: 5, total: 10 });
  });
  it("reads signals by number or name", () => {
    expect(signalNumber("SIGKILL")).toBe(9);
    expect(signalNumber("usr1")).toBe(10);
    expect(signalNumber("15")).toBe(15);
    expect(signalNumber(2)).toBe(2);
    expect(() => signalNumber("SIGNOPE")).toThrow(ValidationError);
    expect(() => signalNumber("0")).toThrow(ValidationError);
  });
});

describe("the logger's binary:// URI", () => {
  it("names node and passes the script and the log path as one query pair", () => {
    const uri = loggerUri("/var/log/a b/c?&=.log", {
      node: "/opt/node #1/bin/node",
      script: "/s/logger.mjs",
    });
    const u = new URL(uri);
    expect(u.protocol).toBe("binary:");
    expect(decodeURIComponent(u.pathname)).toBe("/opt/node #1/bin/node");
    expect([...u.searchParams]).toEqual([["/s/logger.mjs", "/var/log/a b/c?&=.log"]]);
    // Go's url.Query() decodes "+" as a space: there must be none left unescaped.
    expect(uri.split("?")[1]).not.toMatch(/[+ ]/);
  });
});
