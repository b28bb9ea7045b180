// ContainerdRuntime's pure translations, both ways: runtime-core's words to containerd's (label filters,
// the extensions a record carries for berth) and containerd's answers to runtime-core's (state,
// ContainerInfo, events, pull progress). No I/O, so each is testable alone.
import type { ContainerInfo, PullProgress, RuntimeEvent } from "@berth/runtime-core";
import type { ContainerdEvent } from "./events.js";
import type { Container as ContainerRecord } from "./generated/github.com/containerd/containerd/api/services/containers/v1/containers.js";
import { type Process, Status } from "./generated/github.com/containerd/containerd/api/types/task/task.js";
import type { Any } from "./generated/google/protobuf/any.js";
import type { PullEvent } from "./pull.js";

/** Our data in a container record's extensions (hidden from labels). */
export const EXT_META = "berth.containerd.runtime";
const EXT_META_TYPE = "berth.dev/containerd-runtime/v1";
/** When the task was started: containerd keeps no such time. */
export const EXT_STARTED = "berth.containerd.started-at";
const EXT_TIME_TYPE = "berth.dev/time";

/** What the runtime keeps in EXT_META. */
export interface Meta {
  /** Where the container's log is (checked against the runtime's own place, never used). */
  logPath?: string;
  /** The image's StopSignal. */
  stopSignal?: string;
}

const jsonAny = (typeUrl: string, value: unknown): Any => ({
  typeUrl,
  value: Buffer.from(JSON.stringify(value)),
});

/** An extension's JSON; undefined when missing or not JSON (anyone with the socket may write it). */
function readJsonAny<T>(any: Any | undefined): T | undefined {
  if (!any) return undefined;
  try {
    return JSON.parse(Buffer.from(any.value).toString("utf8")) as T;
  } catch {
    return undefined;
  }
}

/** The EXT_META extension of a new container. */
export const metaAny = (meta: Meta): Any => jsonAny(EXT_META_TYPE, meta);
/** The EXT_STARTED extension of a task started at `at`. */
export const startedAny = (at: Date): Any => jsonAny(EXT_TIME_TYPE, at.toISOString());
/** The runtime's data in a container record (empty when missing or unreadable). */
export const metaOf = (c: ContainerRecord): Meta => readJsonAny<Meta>(c.extensions[EXT_META]) ?? {};

/** Quoted for containerd's filter syntax (Go string syntax). */
export const quote = (s: string) => JSON.stringify(s);

/** `labels."k"=="v",...`: every label must match (a comma is AND in one filter). */
export function labelFilter(labels: Record<string, string> | undefined): string[] {
  const parts = Object.entries(labels ?? {}).map(([k, v]) => `labels.${quote(k)}==${quote(v)}`);
  return parts.length ? [parts.join(",")] : [];
}

/** A task that has not exited: running, or paused (or pausing). */
export const live = (s: Status | undefined) =>
  s === Status.RUNNING || s === Status.PAUSED || s === Status.PAUSING;
/** A paused (or pausing) task. */
export const paused = (s: Status | undefined) => s === Status.PAUSED || s === Status.PAUSING;
/** A running task. */
export const running = (s: Status | undefined) => s === Status.RUNNING;

/** The ContainerInfo state of a container whose task is `task` (none: "created"). */
export function stateOf(task: Process | undefined): ContainerInfo["state"] {
  switch (task?.status) {
    case undefined:
    case Status.CREATED:
      return "created";
    case Status.RUNNING:
      return "running";
    case Status.PAUSED:
    case Status.PAUSING:
      return "paused";
    case Status.STOPPED:
      return "exited";
    default:
      return "unknown";
  }
}

/** A Date, unless it is Go's zero time (0001-01-01) or the epoch. */
export const realDate = (d: Date | undefined) => (d && d.getTime() > 0 ? d : undefined);

/** A container record and its task (if any) as runtime-core's ContainerInfo. */
export function containerInfoOf(c: ContainerRecord, task: Process | undefined): ContainerInfo {
  const state = stateOf(task);
  const created = realDate(c.createdAt);
  const startedIso = readJsonAny<string>(c.extensions[EXT_STARTED]);
  const started = state !== "created" && startedIso ? realDate(new Date(startedIso)) : undefined;
  const finished = state === "exited" ? realDate(task?.exitedAt) : undefined;
  return {
    id: c.id,
    name: c.id,
    image: c.image,
    state,
    ...(state === "exited" ? { exitCode: task?.exitStatus ?? 0 } : {}),
    ...(created ? { createdAt: created } : {}),
    ...(started ? { startedAt: started } : {}),
    ...(finished ? { finishedAt: finished } : {}),
    ...((state === "running" || state === "paused") && task?.pid ? { pid: task.pid } : {}),
    labels: { ...c.labels },
    // containerd has no networking of its own: nothing is published (capability ports is false).
    ports: [],
  };
}

/** A task's exit as runtime-core's ExitStatus (no finishedAt for Go's zero time). */
export function exitStatusOf(r: { exitCode: number; exitedAt: Date | undefined }): {
  exitCode: number;
  finishedAt?: Date;
} {
  const at = realDate(r.exitedAt);
  return { exitCode: r.exitCode, ...(at ? { finishedAt: at } : {}) };
}

/** PullEvent as runtime-core's PullProgress (the lease event is internal and skipped). */
export function pullProgressOf(e: PullEvent): PullProgress | undefined {
  switch (e.type) {
    case "resolved":
      return { id: e.digest, status: "resolved" };
    case "blob-exists":
      return { id: e.digest, status: "exists", current: e.size, total: e.size };
    case "blob-progress":
      return { id: e.digest, status: "downloading", current: e.offset, total: e.size };
    case "blob-done":
      return { id: e.digest, status: "downloaded", current: e.size, total: e.size };
    case "layer-unpacked":
      return { id: e.digest, status: "unpacked" };
    case "done":
      return { id: e.image.name, status: "pulled" };
    default:
      return undefined;
  }
}

/** The filter of events() in namespace `namespace`: containers' and tasks' topics only. */
export const eventFilter = (namespace: string) =>
  `namespace==${quote(namespace)},topic~=${quote("^/(containers|tasks)/")}`;

/** containerd's /containers/* and /tasks/* events as RuntimeEvents (others: undefined). */
export function runtimeEventOf(e: ContainerdEvent): RuntimeEvent | undefined {
  const m = /^\/(containers|tasks)\/(.+)$/.exec(e.topic);
  if (!m) return undefined;
  const type = m[1] === "containers" ? "container" : "task";
  const ev = (e.event ?? {}) as Record<string, unknown>;
  const id = (type === "container" ? ev.id : ev.containerId) as string | undefined;
  const attributes: Record<string, string> = {};
  const put = (key: string, v: unknown) => {
    if (v instanceof Date) attributes[key] = v.toISOString();
    else if (typeof v === "string" ? v !== "" : typeof v === "number") attributes[key] = String(v);
  };
  put("image", ev.image);
  put("pid", ev.pid);
  if (e.topic === "/tasks/exit" || e.topic === "/tasks/delete") {
    put("exitCode", ev.exitStatus);
    put("exitedAt", ev.exitedAt);
  }
  // An exec'd process: containerd's `id` (TaskExit, TaskDelete) or `execId`.
  put("execId", ev.execId ?? (type === "task" && ev.id !== id ? ev.id : undefined));
  return {
    time: e.timestamp ?? new Date(),
    type,
    action: m[2] as string,
    ...(id ? { id } : {}),
    ...(Object.keys(attributes).length ? { attributes } : {}),
  };
}

/** An exited task. */
export const exited = (s: Status | undefined) => s === Status.STOPPED;

/** How many containers' labels events() remembers for filtering, deleted ones included. */
const REMEMBERED_LABELS = 4096;

/**
 * The labels of the containers events() has seen: events carry no labels, so each container is looked
 * up once. A deleted container's labels stay remembered (bounded, oldest forgotten first): the shim
 * forwards its task events asynchronously, so on containerd 2.x /tasks/delete can arrive after
 * /containers/delete, when the container can no longer be looked up.
 */
export class LabelMemory {
  readonly #labels = new Map<string, Record<string, string>>();

  /** Whether `id`'s labels are known. */
  has(id: string): boolean {
    return this.#labels.has(id);
  }

  /** Keeps `id`'s labels, as the newest. */
  remember(id: string, labels: Record<string, string>): void {
    this.#labels.delete(id);
    this.#labels.set(id, labels);
    if (this.#labels.size > REMEMBERED_LABELS) {
      const oldest = this.#labels.keys().next().value;
      if (oldest !== undefined) this.#labels.delete(oldest);
    }
  }

  /** Whether `id`'s labels are known and have every one of `want`. */
  match(id: string, want: [string, string][]): boolean {
    const labels = this.#labels.get(id);
    return !!labels && want.every(([k, v]) => labels[k] === v);
  }
}
