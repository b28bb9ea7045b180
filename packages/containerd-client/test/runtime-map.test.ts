// runtime-map.ts: containerd's records and tasks as runtime-core's ContainerInfo, and back.
import { describe, expect, it } from "vitest";
import type { Container as ContainerRecord } from "../src/generated/github.com/containerd/containerd/api/services/containers/v1/containers.js";
import {
  type Process,
  Status,
} from "../src/generated/github.com/containerd/containerd/api/types/task/task.js";
import {
  containerInfoOf,
  EXT_META,
  EXT_STARTED,
  eventFilter,
  exitStatusOf,
  LabelMemory,
  metaAny,
  metaOf,
  startedAny,
  stateOf,
} from "../src/runtime-map.js";

const record = (extensions: ContainerRecord["extensions"] = {}): ContainerRecord =>
  ({
    id: "c1",
    image: "docker.io/library/busybox:latest",
    labels: { app: "x" },
    createdAt: new Date("2024-01-02T03:04:05Z"),
    extensions,
  }) as Partial<ContainerRecord> as ContainerRecord;
const task = (status: Status, more: Partial<Process> = {}): Process =>
  ({ id: "c1", pid: 42, status, exitStatus: 0, ...more }) as Process;

describe("state", () => {
  it("maps each task status, none being created", () => {
    expect(stateOf(undefined)).toBe("created");
    expect(stateOf(task(Status.CREATED))).toBe("created");
    expect(stateOf(task(Status.RUNNING))).toBe("running");
    expect(stateOf(task(Status.PAUSED))).toBe("paused");
    expect(stateOf(task(Status.PAUSING))).toBe("paused");
    expect(stateOf(task(Status.STOPPED))).toBe("exited");
    expect(stateOf(task(Status.UNKNOWN))).toBe("unknown");
  });
});

describe("ContainerInfo", () => {
  it("a running container has its pid and start time, no exit", () => {
    const started = new Date("2024-01-02T03:04:06Z");
    const info = containerInfoOf(record({ [EXT_STARTED]: startedAny(started) }), task(Status.RUNNING));
    expect(info).toEqual({
      id: "c1",
      name: "c1",
      image: "docker.io/library/busybox:latest",
      state: "running",
      createdAt: new Date("2024-01-02T03:04:05Z"),
      startedAt: started,
      pid: 42,
      labels: { app: "x" },
      ports: [],
    });
  });
  it("an exited one has its exit code and time; Go's zero time is no time", () => {
    const exitedAt = new Date("2024-01-02T03:05:00Z");
    const info = containerInfoOf(record(), task(Status.STOPPED, { exitStatus: 3, exitedAt }));
    expect(info).toMatchObject({ state: "exited", exitCode: 3, finishedAt: exitedAt });
    expect(info.pid).toBeUndefined();
    const zero = containerInfoOf(
      record(),
      task(Status.STOPPED, { exitedAt: new Date("0001-01-01T00:00:00Z") }),
    );
    expect(zero.finishedAt).toBeUndefined();
    expect(exitStatusOf({ exitCode: 1, exitedAt: new Date(0) })).toEqual({ exitCode: 1 });
    expect(exitStatusOf({ exitCode: 0, exitedAt })).toEqual({ exitCode: 0, finishedAt: exitedAt });
  });
  it("a created one has no start time, whatever the record says", () => {
    const info = containerInfoOf(record({ [EXT_STARTED]: startedAny(new Date()) }), undefined);
    expect(info.state).toBe("created");
    expect(info.startedAt).toBeUndefined();
  });
});

describe("the runtime's extensions", () => {
  it("reads back what it writes; anything unreadable is no data", () => {
    const meta = { logPath: "/logs/c1/container.log", stopSignal: "SIGQUIT" };
    expect(metaOf(record({ [EXT_META]: metaAny(meta) }))).toEqual(meta);
    expect(metaOf(record({ [EXT_META]: { typeUrl: "x", value: Buffer.from("{not json") } }))).toEqual({});
    expect(metaOf(record())).toEqual({});
  });
  it("filters events by namespace and topic, quoted", () => {
    expect(eventFilter('n"s')).toBe('namespace=="n\\"s",topic~="^/(containers|tasks)/"');
  });
});

describe("the labels events() remembers", () => {
  it("matches every wanted label, and forgets the oldest past its bound", () => {
    const memory = new LabelMemory();
    memory.remember("a", { app: "x", tier: "web" });
    expect(memory.match("a", [["app", "x"]])).toBe(true);
    expect(
      memory.match("a", [
        ["app", "x"],
        ["tier", "db"],
      ]),
    ).toBe(false);
    expect(memory.match("b", [["app", "x"]])).toBe(false);
    for (let i = 0; i < 4096; i++) memory.remember(`c${i}`, {});
    expect(memory.has("a")).toBe(false);
    expect(memory.has("c4095")).toBe(true);
  });
});
