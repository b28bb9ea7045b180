// The pure translations of the CRI adapter: ContainerSpec → PodSandboxConfig and ContainerConfig, and
// CRI statuses, stats and events → runtime-core's types.
import { UnsupportedError, ValidationError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import {
  ContainerEventType,
  ContainerState,
  type ContainerStats,
  type ContainerStatus,
  MountPropagation,
  NamespaceMode,
  Protocol,
} from "../src/index.js";
import {
  checkCriSpec,
  containerConfig,
  criEnv,
  criUser,
  eventFrom,
  infoFromContainer,
  infoFromStatus,
  isSigkill,
  LOG_DIRECTORY_ANNOTATION,
  labelsMatch,
  nanosToDate,
  networkMode,
  OWNED_POD_LABEL,
  PORTS_ANNOTATION,
  podNamespaces,
  podSandboxConfig,
  portsFromAnnotation,
  safeName,
  sandboxConfigFromVerbose,
  stateOf,
  statsFrom,
  verboseContainerInfo,
} from "../src/runtime-map.js";

const IMAGE = "127.0.0.1:5000/busybox:latest";
const ns = (ms: number) => BigInt(ms) * 1_000_000n;

function status(over: Partial<ContainerStatus> = {}): ContainerStatus {
  return {
    id: "c1",
    metadata: { name: "web", attempt: 0 },
    state: ContainerState.CONTAINER_RUNNING,
    createdAt: ns(1_000),
    startedAt: ns(2_000),
    finishedAt: 0n,
    exitCode: 0,
    image: { image: IMAGE, annotations: {}, userSpecifiedImage: "", runtimeHandler: "", imageRef: "" },
    imageRef: "sha256:abc",
    reason: "",
    message: "",
    labels: { app: "x" },
    annotations: {},
    mounts: [],
    logPath: "/logs/web_0.log",
    resources: undefined,
    imageId: "",
    user: undefined,
    stopSignal: 0,
    ...over,
  } as ContainerStatus;
}

describe("criUser", () => {
  it("maps uid, uid:gid, name and name:gid", () => {
    expect(criUser("65534")).toEqual({ runAsUser: { value: 65534n } });
    expect(criUser("1000:50")).toEqual({ runAsUser: { value: 1000n }, runAsGroup: { value: 50n } });
    expect(criUser("nobody")).toEqual({ runAsUsername: "nobody" });
    expect(criUser("nobody:7")).toEqual({ runAsUsername: "nobody", runAsGroup: { value: 7n } });
  });

  it("refuses a group name: the CRI has only numeric groups", () => {
    expect(() => criUser("1000:staff")).toThrow(UnsupportedError);
  });
});

describe("criEnv, safeName, networkMode", () => {
  it("splits KEY=VALUE at the first =", () => {
    expect(criEnv({ A: "b=c" })).toEqual([{ key: "A", value: Buffer.from("b=c") }]);
    expect(criEnv(["X=", "Y=1"])).toEqual([
      { key: "X", value: Buffer.from("") },
      { key: "Y", value: Buffer.from("1") },
    ]);
    expect(criEnv(undefined)).toEqual([]);
  });

  it("makes names fit a hostname and a file name", () => {
    expect(safeName("My_App.1")).toBe("my-app-1");
    expect(safeName("---")).toBe("berth");
    expect(safeName("", "c")).toBe("c");
    expect(safeName("a".repeat(100))).toHaveLength(63);
    expect(safeName(`${"a".repeat(62)}-b`)).toBe("a".repeat(62));
  });

  it("gives bridge the pod network and host the node's; none and named networks are unsupported", () => {
    expect(networkMode({ image: IMAGE })).toBe(NamespaceMode.POD);
    expect(networkMode({ image: IMAGE, network: "bridge" })).toBe(NamespaceMode.POD);
    expect(networkMode({ image: IMAGE, network: "host" })).toBe(NamespaceMode.NODE);
    expect(() => networkMode({ image: IMAGE, network: "none" })).toThrow(UnsupportedError);
    expect(() => networkMode({ image: IMAGE, network: "backend" })).toThrow(UnsupportedError);
  });
});

describe("checkCriSpec", () => {
  it("accepts what the CRI can do", () => {
    expect(() =>
      checkCriSpec({
        image: IMAGE,
        user: "1:2",
        mounts: [{ type: "bind", source: "/tmp", target: "/mnt" }],
        ports: [{ containerPort: 80 }, { containerPort: 53, hostPort: 5353, protocol: "udp" }],
      }),
    ).not.toThrow();
    expect(() => checkCriSpec({ image: IMAGE, pod: "p1" })).not.toThrow();
  });

  it("refuses tmpfs (no mount type in the CRI) as unsupported", () => {
    expect(() => checkCriSpec({ image: IMAGE, mounts: [{ type: "tmpfs", target: "/t" }] })).toThrow(
      UnsupportedError,
    );
  });

  it("refuses network or ports for a container joining a pod, and ports on the host network", () => {
    expect(() => checkCriSpec({ image: IMAGE, pod: "p1", network: "host" })).toThrow(ValidationError);
    expect(() => checkCriSpec({ image: IMAGE, pod: "p1", ports: [{ containerPort: 80 }] })).toThrow(
      ValidationError,
    );
    expect(() => checkCriSpec({ image: IMAGE, network: "host", ports: [{ containerPort: 80 }] })).toThrow(
      ValidationError,
    );
    expect(() => checkCriSpec({ image: IMAGE, network: "none" })).toThrow(UnsupportedError);
    expect(() => checkCriSpec({ image: IMAGE, user: "x:staff" })).toThrow(UnsupportedError);
  });
});

describe("podSandboxConfig", () => {
  const names = { name: "Web_1", uid: "u1", namespace: "berth", logDirectory: "/logs/berth_web-1_u1" };

  it("labels the pod as the adapter's, with the user's labels, log directory and port mappings", () => {
    const config = podSandboxConfig(
      {
        image: IMAGE,
        labels: { app: "x" },
        ports: [
          { containerPort: 80, hostPort: 8080, hostIp: "127.0.0.1" },
          { containerPort: 53, hostPort: 5353, protocol: "udp" },
        ],
      },
      names,
    );
    expect(config.metadata).toEqual({ name: "Web_1", uid: "u1", namespace: "berth", attempt: 0 });
    expect(config.hostname).toBe("web-1");
    expect(config.logDirectory).toBe(names.logDirectory);
    expect(config.labels).toEqual({ app: "x", [OWNED_POD_LABEL]: "true" });
    expect(config.annotations).toEqual({ [LOG_DIRECTORY_ANNOTATION]: names.logDirectory });
    expect(config.portMappings).toEqual([
      { protocol: Protocol.TCP, containerPort: 80, hostPort: 8080, hostIp: "127.0.0.1" },
      { protocol: Protocol.UDP, containerPort: 53, hostPort: 5353, hostIp: "" },
    ]);
    expect(config.linux?.securityContext?.namespaceOptions).toEqual({
      network: NamespaceMode.POD,
      pid: NamespaceMode.CONTAINER,
      ipc: NamespaceMode.POD,
    });
  });

  it("keeps the node's hostname on the host network", () => {
    const config = podSandboxConfig({ image: IMAGE, network: "host" }, names);
    expect(config.hostname).toBe("");
    expect(config.linux?.securityContext?.namespaceOptions?.network).toBe(NamespaceMode.NODE);
  });
});

describe("containerConfig", () => {
  it("maps entrypoint to command and command to args, with env, workdir, user and resources", () => {
    const c = containerConfig(
      {
        image: IMAGE,
        entrypoint: ["sh", "-c"],
        command: ["echo hi"],
        env: { FOO: "bar" },
        workdir: "/tmp",
        user: "65534:65534",
        labels: { app: "x" },
        memory: 64 * 1024 * 1024 + 0.5,
        cpus: 0.5,
        mounts: [{ type: "bind", source: "/data", target: "/mnt", readonly: true }],
        stdin: true,
        tty: true,
      },
      "web",
      podNamespaces({ image: IMAGE }),
    );
    expect(c.metadata).toEqual({ name: "web", attempt: 0 });
    expect(c.image).toEqual({ image: IMAGE });
    expect(c.command).toEqual(["sh", "-c"]);
    expect(c.args).toEqual(["echo hi"]);
    expect(c.envs).toEqual([{ key: "FOO", value: Buffer.from("bar") }]);
    expect(c.workingDir).toBe("/tmp");
    expect(c.labels).toEqual({ app: "x" });
    expect(c.logPath).toBe("web_0.log");
    expect(c.stdin).toBe(true);
    expect(c.stdinOnce).toBe(false);
    expect(c.tty).toBe(true);
    expect(c.mounts).toEqual([
      {
        containerPath: "/mnt",
        hostPath: "/data",
        readonly: true,
        propagation: MountPropagation.PROPAGATION_PRIVATE,
      },
    ]);
    expect(c.linux?.resources).toEqual({
      memoryLimitInBytes: 64n * 1024n * 1024n,
      cpuPeriod: 100_000n,
      cpuQuota: 50_000n,
    });
    expect(c.linux?.securityContext).toEqual({
      runAsUser: { value: 65534n },
      runAsGroup: { value: 65534n },
      namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD },
    });
  });

  it("leaves command and args empty so the image's own run", () => {
    const c = containerConfig({ image: IMAGE }, "a/b", {
      network: NamespaceMode.NODE,
      pid: NamespaceMode.POD,
      ipc: NamespaceMode.POD,
    });
    expect(c.command).toEqual([]);
    expect(c.args).toEqual([]);
    expect(c.linux?.resources).toEqual({});
    // A pod's own choices (here a shared PID namespace) are kept.
    expect(c.linux?.securityContext?.namespaceOptions).toEqual({
      network: NamespaceMode.NODE,
      pid: NamespaceMode.POD,
      ipc: NamespaceMode.POD,
    });
    // A name is not a path.
    expect(c.logPath).toBe("a-b_0.log");
  });
});

describe("status, stats and events", () => {
  it("maps states", () => {
    expect(stateOf(ContainerState.CONTAINER_CREATED)).toBe("created");
    expect(stateOf(ContainerState.CONTAINER_RUNNING)).toBe("running");
    expect(stateOf(ContainerState.CONTAINER_EXITED)).toBe("exited");
    expect(stateOf(ContainerState.CONTAINER_UNKNOWN)).toBe("unknown");
    expect(stateOf(ContainerState.UNRECOGNIZED)).toBe("unknown");
  });

  it("reads CRI nanosecond times, 0 as unset", () => {
    expect(nanosToDate(0n)).toBeUndefined();
    expect(nanosToDate(undefined)).toBeUndefined();
    expect(nanosToDate(1_700_000_000_123_456_789n)?.getTime()).toBe(1_700_000_000_123);
  });

  it("builds ContainerInfo: exit code only when exited, pid only when running", () => {
    const running = infoFromStatus(status(), { ip: "10.0.0.2", pid: 42 });
    expect(running).toEqual({
      id: "c1",
      name: "web",
      image: IMAGE,
      state: "running",
      createdAt: new Date(1_000),
      startedAt: new Date(2_000),
      pid: 42,
      ip: "10.0.0.2",
      labels: { app: "x" },
      ports: [],
    });
    const exited = infoFromStatus(
      status({ state: ContainerState.CONTAINER_EXITED, exitCode: 137, finishedAt: ns(3_000) }),
      { pid: 42 },
    );
    expect(exited.exitCode).toBe(137);
    expect(exited.finishedAt).toEqual(new Date(3_000));
    expect(exited.pid).toBeUndefined();
    expect(infoFromStatus(status({ state: ContainerState.CONTAINER_CREATED, startedAt: 0n })).startedAt).toBe(
      undefined,
    );
  });

  it("builds ContainerInfo from a listing", () => {
    const info = infoFromContainer({
      id: "c2",
      podSandboxId: "p",
      metadata: { name: "n", attempt: 0 },
      image: undefined,
      imageRef: "sha256:def",
      state: ContainerState.CONTAINER_EXITED,
      createdAt: ns(5_000),
      labels: { a: "b" },
      annotations: {},
      imageId: "",
    });
    expect(info).toEqual({
      id: "c2",
      name: "n",
      image: "sha256:def",
      state: "exited",
      createdAt: new Date(5_000),
      labels: { a: "b" },
      ports: [],
    });
  });

  it("remembers the bound ports on the container, and reads them back only while it runs", () => {
    const bound = [
      { containerPort: 8080, hostPort: 32000 },
      { containerPort: 53, hostPort: 5353, hostIp: "127.0.0.1", protocol: "udp" as const },
    ];
    const config = containerConfig({ image: IMAGE, ports: bound }, "web", podNamespaces({ image: IMAGE }));
    const annotation = config.annotations?.[PORTS_ANNOTATION];
    const expected = [
      { containerPort: 8080, protocol: "tcp", hostIp: "", hostPort: 32000 },
      { containerPort: 53, protocol: "udp", hostIp: "127.0.0.1", hostPort: 5353 },
    ];
    expect(portsFromAnnotation(annotation)).toEqual(expected);
    expect(infoFromStatus(status({ annotations: { [PORTS_ANNOTATION]: annotation ?? "" } })).ports).toEqual(
      expected,
    );
    const exited = status({
      state: ContainerState.CONTAINER_EXITED,
      annotations: { [PORTS_ANNOTATION]: annotation ?? "" },
    });
    expect(infoFromStatus(exited).ports).toEqual([]);
    expect(containerConfig({ image: IMAGE }, "web", podNamespaces({ image: IMAGE })).annotations).toEqual({});
    // The runtime's answer is not trusted: bad JSON, wrong shapes and huge values are left out.
    for (const bad of ["", "{", "null", '{"a":1}', "[1]", `"${"x".repeat(300_000)}"`]) {
      expect(portsFromAnnotation(bad)).toEqual([]);
    }
    expect(
      portsFromAnnotation(
        JSON.stringify([
          { containerPort: 0, protocol: "tcp", hostIp: "", hostPort: 1 },
          { containerPort: 1, protocol: "sctp", hostIp: "", hostPort: 1 },
          { containerPort: 1, protocol: "tcp", hostIp: 5, hostPort: 1 },
          { containerPort: 1.5, protocol: "tcp", hostIp: "", hostPort: 1 },
          { containerPort: 2, protocol: "tcp", hostIp: "", hostPort: 2 },
        ]),
      ),
    ).toEqual([{ containerPort: 2, protocol: "tcp", hostIp: "", hostPort: 2 }]);
    const many = JSON.stringify(
      Array.from({ length: 2000 }, () => ({ containerPort: 1, protocol: "tcp", hostIp: "", hostPort: 1 })),
    );
    expect(portsFromAnnotation(many)).toHaveLength(1024);
  });

  it("reports memory and the limit (CRI sends what is left under it)", () => {
    const base = {
      attributes: undefined,
      cpu: {
        timestamp: ns(9_000),
        usageCoreNanoSeconds: { value: 123n },
        usageNanoCores: undefined,
        psi: undefined,
      },
      writableLayer: undefined,
      swap: undefined,
      io: undefined,
    };
    const memory = (available: bigint) => ({
      timestamp: ns(9_000),
      workingSetBytes: { value: 1_000n },
      availableBytes: { value: available },
      usageBytes: undefined,
      rssBytes: undefined,
      pageFaults: undefined,
      majorPageFaults: undefined,
      psi: undefined,
    });
    const limited = statsFrom({ ...base, memory: memory(63_000n) } as ContainerStats);
    expect(limited).toEqual({
      time: new Date(9_000),
      cpuNanos: 123,
      memoryBytes: 1_000,
      memoryLimitBytes: 64_000,
    });
    const unlimited = statsFrom({ ...base, memory: memory(9_223_372_036_854_770_000n) } as ContainerStats);
    expect(unlimited.memoryLimitBytes).toBeUndefined();
    expect(statsFrom({ ...base, memory: memory(0n) } as ContainerStats).memoryLimitBytes).toBeUndefined();
  });

  it("maps container events, with the container's labels as attributes", () => {
    const e = eventFrom({
      containerId: "c1",
      containerEventType: ContainerEventType.CONTAINER_STOPPED_EVENT,
      createdAt: ns(7_000),
      podSandboxStatus: undefined,
      containersStatuses: [status()],
    });
    expect(e).toEqual({
      time: new Date(7_000),
      type: "container",
      action: "stop",
      id: "c1",
      attributes: { app: "x" },
    });
    expect(labelsMatch(e.attributes, { app: "x" })).toBe(true);
    expect(labelsMatch(e.attributes, { app: "y" })).toBe(false);
    expect(labelsMatch(undefined, {})).toBe(true);
  });

  it("knows SIGKILL's spellings", () => {
    for (const s of [undefined, "SIGKILL", "KILL", "kill", "9", 9]) expect(isSigkill(s)).toBe(true);
    for (const s of ["SIGTERM", "TERM", "15", "SIGUSR1"]) expect(isSigkill(s)).toBe(false);
  });
});

describe("verbose statuses", () => {
  it("reads the sandbox config containerd keeps, keeping label and annotation keys as they are", () => {
    const config = sandboxConfigFromVerbose({
      info: JSON.stringify({
        pid: 1,
        config: {
          metadata: { name: "p", uid: "u", namespace: "berth" },
          log_directory: "/logs/p",
          port_mappings: [{ container_port: 80, host_port: 8080 }],
          labels: { my_label: "x", [OWNED_POD_LABEL]: "true" },
          annotations: { some_note: "y" },
          linux: {
            cgroup_parent: "/kubepods",
            security_context: { namespace_options: { network: 2, pid: 1 } },
          },
        },
      }),
    });
    expect(config).toEqual({
      metadata: { name: "p", uid: "u", namespace: "berth" },
      logDirectory: "/logs/p",
      portMappings: [{ containerPort: 80, hostPort: 8080 }],
      labels: { my_label: "x", [OWNED_POD_LABEL]: "true" },
      annotations: { some_note: "y" },
      linux: { cgroupParent: "/kubepods", securityContext: { namespaceOptions: { network: 2, pid: 1 } } },
    });
    expect(sandboxConfigFromVerbose({})).toBeUndefined();
    expect(sandboxConfigFromVerbose({ info: "not json" })).toBeUndefined();
    expect(sandboxConfigFromVerbose({ info: "{}" })).toBeUndefined();
  });

  it("reads a container's pid and pod from its verbose status", () => {
    expect(verboseContainerInfo({ info: JSON.stringify({ pid: 4242, sandboxID: "p1" }) })).toEqual({
      pid: 4242,
      sandboxId: "p1",
    });
    expect(verboseContainerInfo({ info: JSON.stringify({ pid: 0 }) })).toEqual({});
    expect(verboseContainerInfo({})).toEqual({});
    expect(verboseContainerInfo({ info: "{" })).toEqual({});
  });
});
