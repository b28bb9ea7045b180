import { describe, expect, it } from "vitest";
import {
  createBody,
  eventOf,
  infoOf,
  labelFilter,
  logEntry,
  progressOf,
  publicEntry,
  stateOf,
  statsOf,
  summaryToInfo,
  timeKey,
  toInfo,
} from "../src/runtime-map.js";

describe("createBody", () => {
  it("translates every ContainerSpec field the Engine API takes", () => {
    const body = createBody({
      image: "alpine:3.20",
      command: ["sh", "-c", "true"],
      entrypoint: ["/bin/env"],
      env: { A: "1" },
      workdir: "/w",
      user: "1000:1000",
      labels: { app: "x" },
      tty: true,
      stdin: true,
      ports: [
        { containerPort: 80, hostPort: 8080, hostIp: "127.0.0.1" },
        { containerPort: 53, protocol: "udp" },
      ],
      mounts: [
        { type: "bind", source: "/src", target: "/dst", readonly: true },
        { type: "tmpfs", target: "/tmp", size: 1024 },
      ],
      memory: 64 * 1024 * 1024,
      cpus: 0.5,
      network: "bridge",
    });
    expect(body).toEqual({
      Image: "alpine:3.20",
      Cmd: ["sh", "-c", "true"],
      Entrypoint: ["/bin/env"],
      Env: ["A=1"],
      WorkingDir: "/w",
      User: "1000:1000",
      Labels: { app: "x" },
      Tty: true,
      OpenStdin: true,
      ExposedPorts: { "80/tcp": {}, "53/udp": {} },
      HostConfig: {
        Binds: ["/src:/dst:ro"],
        Tmpfs: { "/tmp": "size=1024" },
        PortBindings: {
          "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "8080" }],
          "53/udp": [{ HostIp: "", HostPort: "" }],
        },
        Memory: 64 * 1024 * 1024,
        NanoCpus: 500_000_000,
        NetworkMode: "bridge",
      },
    });
  });

  it("leaves out what the spec does not say", () => {
    const body = createBody({ image: "alpine" });
    expect(Object.keys(body).sort()).toEqual(
      ["Env", "ExposedPorts", "HostConfig", "Image", "Labels", "OpenStdin", "Tty"].sort(),
    );
    expect(body.HostConfig).toEqual({ Binds: [], Tmpfs: {}, PortBindings: {} });
  });
});

describe("answers read field by field", () => {
  it("knows Podman from its components", () => {
    const v = { Version: "5.4.2", ApiVersion: "1.41", Components: [{ Name: "Podman Engine" }], Os: 7 };
    expect(infoOf(v, "podman")).toEqual({
      backend: "podman",
      name: "Podman",
      version: "5.4.2",
      apiVersion: "1.41",
    });
    expect(infoOf({ Components: "nonsense" }, "docker")).toEqual({
      backend: "docker",
      name: "Docker Engine",
      version: "",
    });
  });

  it("maps Podman's states onto Docker's", () => {
    expect([stateOf("stopped"), stateOf("configured"), stateOf("running"), stateOf(undefined)]).toEqual([
      "exited",
      "created",
      "running",
      "unknown",
    ]);
  });

  it("reads an inspect answer, and ignores fields of the wrong type", () => {
    const info = toInfo({
      Id: "abc",
      Name: "/web",
      Image: "sha256:1",
      Created: "2026-01-02T03:04:05Z",
      Config: { Image: "nginx", Labels: { a: "b", bad: 1 } },
      State: { Status: "exited", ExitCode: 3, Pid: 0, StartedAt: "2026-01-02T03:04:06Z" },
      NetworkSettings: { IPAddress: "", Networks: { bridge: { IPAddress: "172.17.0.2" } } },
    });
    expect(info).toEqual({
      id: "abc",
      name: "web",
      image: "nginx",
      state: "exited",
      exitCode: 3,
      createdAt: new Date("2026-01-02T03:04:05Z"),
      startedAt: new Date("2026-01-02T03:04:06Z"),
      ip: "172.17.0.2",
      labels: { a: "b" },
      ports: [],
    });
    expect(toInfo({ Id: 5, State: "x" })).toEqual({
      id: "",
      name: "",
      image: "",
      state: "unknown",
      labels: {},
      ports: [],
    });
  });

  it("reads bound ports, and skips what is not a port binding", () => {
    const ports = toInfo({
      NetworkSettings: {
        Ports: {
          "8080/tcp": [
            { HostIp: "0.0.0.0", HostPort: "32768" },
            { HostIp: "::", HostPort: "32768" },
          ],
          "53/udp": [{ HostIp: "127.0.0.1", HostPort: "5353" }],
          "9000/tcp": null,
          "70000/tcp": [{ HostIp: "", HostPort: "1" }],
          "80/sctp": [{ HostIp: "", HostPort: "80" }],
          "81/tcp": [
            { HostIp: "", HostPort: "0" },
            { HostIp: "", HostPort: "99999" },
            { HostPort: "1e3" },
            7,
          ],
          "82/tcp": "not a list",
        },
      },
    }).ports;
    expect(ports).toEqual([
      { containerPort: 8080, protocol: "tcp", hostIp: "0.0.0.0", hostPort: 32768 },
      { containerPort: 8080, protocol: "tcp", hostIp: "::", hostPort: 32768 },
      { containerPort: 53, protocol: "udp", hostIp: "127.0.0.1", hostPort: 5353 },
    ]);
    const many = Object.fromEntries(
      Array.from({ length: 5000 }, (_, i) => [`${i + 1}/tcp`, [{ HostIp: "", HostPort: String(i + 1) }]]),
    );
    expect(toInfo({ NetworkSettings: { Ports: many } }).ports).toHaveLength(4096);
    expect(
      summaryToInfo({
        Ports: [
          { IP: "0.0.0.0", PrivatePort: 8080, PublicPort: 32768, Type: "tcp" },
          { PrivatePort: 9000, Type: "tcp" },
          { IP: "", PrivatePort: 1, PublicPort: 2, Type: "sctp" },
          null,
        ],
      }).ports,
    ).toEqual([{ containerPort: 8080, protocol: "tcp", hostIp: "0.0.0.0", hostPort: 32768 }]);
  });

  it("reads a list summary", () => {
    expect(
      summaryToInfo({ Id: "a", Names: ["/n"], Image: "i", State: "running", Created: 2, Labels: {} }),
    ).toEqual({
      id: "a",
      name: "n",
      image: "i",
      state: "running",
      createdAt: new Date(2000),
      labels: {},
      ports: [],
    });
  });

  it("reads stats, events and pull progress", () => {
    expect(
      statsOf({
        read: "2026-01-02T03:04:05Z",
        cpu_stats: { cpu_usage: { total_usage: 10 } },
        memory_stats: { usage: 5, limit: 9 },
        pids_stats: { current: 2 },
      }),
    ).toEqual({
      time: new Date("2026-01-02T03:04:05Z"),
      cpuNanos: 10,
      memoryBytes: 5,
      memoryLimitBytes: 9,
      pids: 2,
    });
    expect(
      eventOf({
        Type: "container",
        Action: "die",
        timeNano: 2_000_000,
        Actor: { ID: "c", Attributes: { x: "y" } },
      }),
    ).toEqual({ time: new Date(2), type: "container", action: "die", id: "c", attributes: { x: "y" } });
    expect(eventOf({ time: 3 })).toEqual({ time: new Date(3000), type: "", action: "" });
    expect(progressOf({ status: "Downloading", id: "l1", progressDetail: { current: 1, total: 2 } })).toEqual(
      {
        status: "Downloading",
        id: "l1",
        current: 1,
        total: 2,
      },
    );
    expect(labelFilter({ a: "1", b: "2" })).toEqual(["a=1", "b=2"]);
  });
});

describe("log entries", () => {
  it("takes the timestamp off a line and keys it so it sorts as time does", () => {
    const frame = { stream: "stdout", data: Buffer.from("2026-01-02T03:04:05.5Z hello") };
    const entry = logEntry(frame, true);
    expect(Buffer.from(entry?.data ?? []).toString()).toBe("hello");
    expect(entry?.time).toEqual(new Date("2026-01-02T03:04:05.500Z"));
    expect(entry?.key).toBe(timeKey("2026-01-02T03:04:05.5Z"));
    expect(timeKey("2026-01-02T03:04:05.5Z")! < timeKey("2026-01-02T03:04:05.6Z")!).toBe(true);
    expect(timeKey("not a time")).toBeUndefined();
    expect(logEntry({ stream: "stdin", data: Buffer.from("x") }, false)).toBeUndefined();
    expect(publicEntry(entry!, false)).toEqual({ stream: "stdout", data: entry?.data });
  });
});
