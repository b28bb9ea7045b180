// Pure translation between runtime-core's shapes and the Engine API's: the create request of a
// ContainerSpec, and ContainerInfo, stats, events and pull progress from the daemon's answers (read field
// by field: a daemon's answer is untrusted). No I/O.
import type {
  BoundPort,
  ContainerInfo,
  ContainerSpec,
  ContainerStats,
  LogEntry,
  PullProgress,
  RuntimeEvent,
  RuntimeInfo,
} from "@berth/runtime-core";
import { envList } from "@berth/runtime-core";
import { type Json, num, obj, str, strings, time } from "./answer.js";
import type { ContainerCreateParams } from "./generated/index.js";

/** The system.version answer as RuntimeInfo (Podman names itself among the components). */
export function infoOf(v: Json, backend: "docker" | "podman"): RuntimeInfo {
  const components = Array.isArray(v.Components) ? v.Components : [];
  const podman = components.some((c) => /podman/i.test(str(obj(c)?.Name) ?? ""));
  const [apiVersion, os, arch] = [str(v.ApiVersion), str(v.Os), str(v.Arch)];
  return {
    backend,
    name: podman ? "Podman" : "Docker Engine",
    version: str(v.Version) ?? "",
    ...(apiVersion ? { apiVersion } : {}),
    ...(os ? { os } : {}),
    ...(arch ? { arch } : {}),
  };
}

/** `label` filters: every label must match. */
export function labelFilter(labels: Record<string, string> | undefined): string[] {
  return Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`);
}

/** The containers.create body of a ContainerSpec (its name goes in the query). */
export function createBody(spec: ContainerSpec): ContainerCreateParams["body"] {
  const ports = spec.ports ?? [];
  const binds = (spec.mounts ?? []).flatMap((m) =>
    m.type === "bind" ? [`${m.source}:${m.target}${m.readonly ? ":ro" : ""}`] : [],
  );
  const tmpfs = Object.fromEntries(
    (spec.mounts ?? []).flatMap((m) =>
      m.type === "tmpfs" ? [[m.target, m.size ? `size=${m.size}` : ""]] : [],
    ),
  );
  return {
    Image: spec.image,
    ...(spec.command ? { Cmd: spec.command } : {}),
    ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
    Env: envList(spec.env),
    ...(spec.workdir ? { WorkingDir: spec.workdir } : {}),
    ...(spec.user ? { User: spec.user } : {}),
    Labels: spec.labels ?? {},
    Tty: spec.tty ?? false,
    OpenStdin: spec.stdin ?? false,
    ExposedPorts: Object.fromEntries(ports.map((p) => [`${p.containerPort}/${p.protocol ?? "tcp"}`, {}])),
    HostConfig: {
      Binds: binds,
      Tmpfs: tmpfs,
      PortBindings: Object.fromEntries(
        ports.map((p) => [
          `${p.containerPort}/${p.protocol ?? "tcp"}`,
          [{ HostIp: p.hostIp ?? "", HostPort: p.hostPort ? String(p.hostPort) : "" }],
        ]),
      ),
      ...(spec.memory ? { Memory: spec.memory } : {}),
      ...(spec.cpus ? { NanoCpus: Math.round(spec.cpus * 1e9) } : {}),
      ...(spec.network ? { NetworkMode: spec.network === "bridge" ? "bridge" : spec.network } : {}),
    },
  };
}

/** ContainerStatsResponse, read field by field. */
export function statsOf(s: Json): ContainerStats {
  const cpuNanos = num(obj(obj(s.cpu_stats)?.cpu_usage)?.total_usage);
  const memory = obj(s.memory_stats);
  const [memoryBytes, memoryLimitBytes] = [num(memory?.usage), num(memory?.limit)];
  const pids = num(obj(s.pids_stats)?.current);
  return {
    time: time(s.read) ?? new Date(),
    ...(cpuNanos !== undefined ? { cpuNanos } : {}),
    ...(memoryBytes !== undefined ? { memoryBytes } : {}),
    ...(memoryLimitBytes !== undefined ? { memoryLimitBytes } : {}),
    ...(pids !== undefined ? { pids } : {}),
  };
}

/** An events message of type container, read field by field. */
export function eventOf(e: Json): RuntimeEvent {
  const actor = obj(e.Actor);
  const [nanos, id] = [num(e.timeNano), str(actor?.ID)];
  return {
    time: nanos ? new Date(nanos / 1e6) : new Date((num(e.time) ?? 0) * 1000),
    type: str(e.Type) ?? "",
    action: str(e.Action) ?? "",
    ...(id ? { id } : {}),
    ...(obj(actor?.Attributes) ? { attributes: strings(actor?.Attributes) } : {}),
  };
}

/** A pull progress message, read field by field. */
export function progressOf(message: Json): PullProgress {
  const detail = obj(message.progressDetail);
  const [id, current, total] = [str(message.id), num(detail?.current), num(detail?.total)];
  return {
    status: str(message.status) ?? "",
    ...(id ? { id } : {}),
    ...(current !== undefined ? { current } : {}),
    ...(total !== undefined ? { total } : {}),
  };
}

export function stateOf(s: string | undefined): ContainerInfo["state"] {
  // Podman says "stopped" and "configured" where Docker says "exited" and "created".
  if (s === "stopped") return "exited";
  if (s === "configured") return "created";
  return s ?? "unknown";
}

/** ContainerInspectResponse, read field by field. */
export function toInfo(c: Json): ContainerInfo {
  const settings = obj(c.NetworkSettings);
  const networks = Object.values(obj(settings?.Networks) ?? {});
  const ip =
    str(settings?.IPAddress) || networks.map((n) => str(obj(n)?.IPAddress)).find((a) => a) || undefined;
  const state = obj(c.State);
  const config = obj(c.Config);
  const status = str(state?.Status);
  const created = time(c.Created);
  const started = time(state?.StartedAt);
  const finished = time(state?.FinishedAt);
  const pid = num(state?.Pid);
  return {
    id: str(c.Id) ?? "",
    name: (str(c.Name) ?? "").replace(/^\//, ""),
    image: str(config?.Image) ?? str(c.Image) ?? "",
    state: stateOf(status),
    ...(status === "exited" || status === "stopped" ? { exitCode: num(state?.ExitCode) ?? 0 } : {}),
    ...(created ? { createdAt: created } : {}),
    ...(started ? { startedAt: started } : {}),
    ...(finished ? { finishedAt: finished } : {}),
    ...(pid ? { pid } : {}),
    ...(ip ? { ip } : {}),
    labels: strings(config?.Labels),
    ports: boundPorts(settings?.Ports),
  };
}

/** The most bound ports read from one answer (a host has 65,535 per protocol and address). */
const MAX_BOUND_PORTS = 4096;

/** A port number from the daemon: an integer 1-65535 (Docker sends host ports as strings). */
function portNumber(value: unknown): number | undefined {
  const n = typeof value === "string" && /^\d{1,5}$/.test(value) ? Number(value) : num(value);
  return n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}

/** A protocol berth reports ("sctp" and others are left out). */
const protocolOf = (value: unknown): "tcp" | "udp" | undefined =>
  value === "tcp" || value === "udp" ? value : undefined;

/** NetworkSettings.Ports ({"8080/tcp": [{HostIp, HostPort}] or null}) as bound ports. */
export function boundPorts(value: unknown): BoundPort[] {
  const out: BoundPort[] = [];
  for (const [key, bindings] of Object.entries(obj(value) ?? {})) {
    const [port, proto] = key.split("/");
    const containerPort = portNumber(port);
    const protocol = protocolOf(proto ?? "tcp");
    if (!containerPort || !protocol || !Array.isArray(bindings)) continue;
    for (const b of bindings) {
      const hostPort = portNumber(obj(b)?.HostPort);
      if (hostPort && out.length < MAX_BOUND_PORTS)
        out.push({ containerPort, protocol, hostIp: str(obj(b)?.HostIp) ?? "", hostPort });
    }
  }
  return out;
}

/** ContainerSummary.Ports ([{IP, PrivatePort, PublicPort, Type}]) as bound ports (published ones only). */
export function summaryPorts(value: unknown): BoundPort[] {
  const out: BoundPort[] = [];
  for (const p of Array.isArray(value) ? value : []) {
    const o = obj(p);
    const containerPort = portNumber(o?.PrivatePort);
    const hostPort = portNumber(o?.PublicPort);
    const protocol = protocolOf(o?.Type);
    if (containerPort && hostPort && protocol && out.length < MAX_BOUND_PORTS)
      out.push({ containerPort, protocol, hostIp: str(o?.IP) ?? "", hostPort });
  }
  return out;
}

/** ContainerSummary, read field by field. */
export function summaryToInfo(c: Json): ContainerInfo {
  const names = Array.isArray(c.Names) ? c.Names : [];
  const created = num(c.Created);
  return {
    id: str(c.Id) ?? "",
    name: (str(names[0]) ?? "").replace(/^\//, ""),
    image: str(c.Image) ?? "",
    state: stateOf(str(c.State)),
    ...(created ? { createdAt: new Date(created * 1000) } : {}),
    labels: strings(c.Labels),
    ports: summaryPorts(c.Ports),
  };
}

export interface TimedEntry extends LogEntry {
  /** The timestamp as a sortable key: zero-padded Unix seconds "." nine digits of nanoseconds. */
  key?: string;
}

/** Seconds and nanoseconds of an RFC 3339 timestamp, as a key that sorts as the time does. */
export function timeKey(ts: string): string | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3]}`) / 1000;
  if (Number.isNaN(seconds)) return undefined;
  return `${String(seconds).padStart(12, "0")}.${(m[2] ?? "").padEnd(9, "0")}`;
}

/** A frame of the logs stream as an entry; with `timestamps`, its "<RFC3339Nano> " prefix is taken off. */
export function logEntry(
  frame: { stream: string; data: Uint8Array },
  timestamps: boolean,
): TimedEntry | undefined {
  if (frame.stream !== "stdout" && frame.stream !== "stderr") return undefined;
  if (!timestamps) return { stream: frame.stream, data: frame.data };
  // "<RFC3339Nano> <line>": Docker writes one frame per log line when asked for timestamps.
  const space = frame.data.indexOf(0x20);
  const ts = space > 0 ? Buffer.from(frame.data.subarray(0, space)).toString("latin1") : "";
  const time = ts ? new Date(ts) : undefined;
  const key = ts ? timeKey(ts) : undefined;
  return {
    stream: frame.stream,
    data: space > 0 ? frame.data.subarray(space + 1) : frame.data,
    ...(time && !Number.isNaN(time.getTime()) ? { time } : {}),
    ...(key ? { key } : {}),
  };
}

/** The entry as logs() yields it: the time only when the caller asked for timestamps. */
export function publicEntry(e: TimedEntry, timestamps: boolean): LogEntry {
  return { stream: e.stream, data: e.data, ...(timestamps && e.time ? { time: e.time } : {}) };
}
