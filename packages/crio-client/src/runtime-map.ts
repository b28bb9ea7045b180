// Pure translation between runtime-core's words and the CRI's: a ContainerSpec becomes a PodSandboxConfig
// and a ContainerConfig, and CRI statuses, stats and events become ContainerInfo, ContainerStats and
// RuntimeEvents. What the CRI cannot express is refused here with UnsupportedError, before any call.
import type { DeepPartial } from "@berth/grpc";
import {
  type BoundPort,
  type ContainerInfo,
  type ContainerSpec,
  type ContainerState as CoreState,
  type ContainerStats as CoreStats,
  envList,
  type PortMapping,
  type RuntimeEvent,
  UnsupportedError,
  ValidationError,
} from "@berth/runtime-core";
import {
  type Container,
  type ContainerConfig,
  type ContainerEventResponse,
  ContainerEventType,
  ContainerState,
  type ContainerStats,
  type ContainerStatus,
  type LinuxContainerSecurityContext,
  MountPropagation,
  NamespaceMode,
  type NamespaceOption,
  type PodSandboxConfig,
  Protocol,
} from "./generated/runtime/v1/api.js";

/** Label on the pods the adapter creates for a container; remove() takes such a pod down with it. */
export const OWNED_POD_LABEL = "berth.owned-pod";
/** Pod annotation naming the log directory the adapter made for the pod (removed with it). */
export const LOG_DIRECTORY_ANNOTATION = "berth.log-directory";
/**
 * Container annotation listing the host ports the adapter bound for it ([{containerPort, protocol, hostIp,
 * hostPort}] as JSON): the CRI reports a pod's port mappings nowhere, so inspect() reads them from here.
 */
export const PORTS_ANNOTATION = "berth.ports";
/** The longest ports annotation read back, and the most entries kept from it. */
const MAX_PORTS_ANNOTATION = 256 * 1024;
const MAX_PORTS = 1024;
/** CFS period the CPU quota is expressed in (the kernel's and Docker's default, 100 ms). */
export const CPU_PERIOD_US = 100_000;

const unsupported = (message: string, operation = "create") =>
  new UnsupportedError(message, { operation, backend: "cri" });

/** The CRI has numeric users (run_as_user), user names (run_as_username) and numeric groups only. */
export function criUser(
  user: string,
): Pick<DeepPartial<LinuxContainerSecurityContext>, "runAsUser" | "runAsGroup" | "runAsUsername"> {
  const [name = "", group] = user.split(":", 2);
  const out: Pick<
    DeepPartial<LinuxContainerSecurityContext>,
    "runAsUser" | "runAsGroup" | "runAsUsername"
  > = /^\d+$/.test(name) ? { runAsUser: { value: BigInt(name) } } : { runAsUsername: name };
  if (group !== undefined) {
    if (!/^\d+$/.test(group)) {
      throw unsupported(`user "${user}": the CRI takes a group only as a number (run_as_group), not a name`);
    }
    out.runAsGroup = { value: BigInt(group) };
  }
  return out;
}

/** KEY=VALUE strings as CRI key/values (the value after the first "="). */
export function criEnv(env: ContainerSpec["env"]): Array<{ key: string; value: Buffer }> {
  return envList(env).map((e) => {
    const eq = e.indexOf("=");
    return { key: e.slice(0, eq), value: Buffer.from(e.slice(eq + 1), "utf8") };
  });
}

/** A name made safe for a hostname (RFC 1123 label) and a file name. */
export function safeName(name: string, fallback = "berth"): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+/, "")
    .slice(0, 63)
    .replace(/-+$/, "");
  return s || fallback;
}

/** Which network namespace the pod gets: the CNI pod network or the node's. */
export function networkMode(spec: ContainerSpec): NamespaceMode {
  const network = spec.network ?? "bridge";
  if (network === "bridge") return NamespaceMode.POD;
  if (network === "host") return NamespaceMode.NODE;
  if (network === "none") {
    throw unsupported(
      'network "none": a CRI pod always gets the CNI network or the node\'s (no namespace without one)',
    );
  }
  throw unsupported(`network "${network}": CRI pods have one network (the CNI's) or the node's ("host")`);
}

/** Refuse what the CRI cannot do, before anything reaches the runtime. */
export function checkCriSpec(spec: ContainerSpec): void {
  const invalid = (message: string) => new ValidationError(message, { operation: "create", backend: "cri" });
  for (const m of spec.mounts ?? []) {
    if (m.type === "tmpfs") {
      throw unsupported(`tmpfs mount at ${m.target}: CRI mounts are bind mounts only (no mount type)`);
    }
  }
  if (spec.pod !== undefined) {
    // Network and ports belong to the sandbox, made before any of its containers.
    if (spec.network !== undefined) {
      throw invalid(`network cannot be set for a container joining pod ${spec.pod}: it is the pod's`);
    }
    if (spec.ports?.length) {
      throw invalid(`ports cannot be set for a container joining pod ${spec.pod}: they are the pod's`);
    }
  }
  if (networkMode(spec) === NamespaceMode.NODE && spec.ports?.length) {
    throw invalid("ports have no meaning with network host");
  }
  for (const p of spec.ports ?? []) {
    if (p.protocol !== undefined && p.protocol !== "tcp" && p.protocol !== "udp") {
      throw invalid(`port ${p.containerPort}: protocol ${String(p.protocol)} is not tcp or udp`);
    }
  }
  if (spec.user !== undefined) criUser(spec.user);
}

export interface SandboxNames {
  /** metadata.name of the pod (the container's name). */
  name: string;
  uid: string;
  namespace: string;
  logDirectory: string;
}

/** The pod the adapter creates for one container. */
export function podSandboxConfig(spec: ContainerSpec, names: SandboxNames): DeepPartial<PodSandboxConfig> {
  const namespaces = podNamespaces(spec);
  return {
    metadata: { name: names.name, uid: names.uid, namespace: names.namespace, attempt: 0 },
    // A host-network pod keeps the node's hostname (the runtime refuses to set another).
    hostname: namespaces.network === NamespaceMode.NODE ? "" : safeName(names.name),
    logDirectory: names.logDirectory,
    labels: { ...spec.labels, [OWNED_POD_LABEL]: "true" },
    annotations: { [LOG_DIRECTORY_ANNOTATION]: names.logDirectory },
    portMappings: (spec.ports ?? []).map((p) => ({
      protocol: p.protocol === "udp" ? Protocol.UDP : Protocol.TCP,
      containerPort: p.containerPort,
      hostPort: p.hostPort ?? 0,
      hostIp: p.hostIp ?? "",
    })),
    linux: {
      securityContext: { namespaceOptions: { ...namespaces } },
    },
  };
}

/** The namespaces a container shares with its pod; in the adapter's pods, a PID namespace of its own. */
export type PodNamespaces = Pick<NamespaceOption, "network" | "pid" | "ipc">;

export function podNamespaces(spec: ContainerSpec): PodNamespaces {
  return { network: networkMode(spec), pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD };
}

/**
 * The container: CRI `command` is Docker's entrypoint and `args` its command; with both empty the image's
 * own run (the runtime applies Docker's rules). Its namespaces follow the pod's, as the kubelet sets them.
 */
export function containerConfig(
  spec: ContainerSpec,
  name: string,
  namespaces: PodNamespaces,
): DeepPartial<ContainerConfig> {
  const resources: DeepPartial<NonNullable<ContainerConfig["linux"]>>["resources"] = {};
  if (spec.memory !== undefined) resources.memoryLimitInBytes = BigInt(Math.floor(spec.memory));
  if (spec.cpus !== undefined) {
    resources.cpuPeriod = BigInt(CPU_PERIOD_US);
    resources.cpuQuota = BigInt(Math.round(spec.cpus * CPU_PERIOD_US));
  }
  return {
    metadata: { name, attempt: 0 },
    image: { image: spec.image },
    command: spec.entrypoint ?? [],
    args: spec.command ?? [],
    workingDir: spec.workdir ?? "",
    envs: criEnv(spec.env),
    mounts: (spec.mounts ?? []).flatMap((m) =>
      m.type === "bind"
        ? [
            {
              containerPath: m.target,
              hostPath: m.source,
              readonly: m.readonly ?? false,
              propagation: MountPropagation.PROPAGATION_PRIVATE,
            },
          ]
        : [],
    ),
    labels: { ...spec.labels },
    // The pod publishes the ports (chosen by then: see hostPorts); the container remembers them.
    annotations: spec.ports?.length ? { [PORTS_ANNOTATION]: JSON.stringify(spec.ports.map(boundPort)) } : {},
    logPath: `${safeName(name, "container")}_0.log`,
    stdin: spec.stdin ?? false,
    stdinOnce: false,
    tty: spec.tty ?? false,
    linux: {
      resources,
      securityContext: {
        ...(spec.user !== undefined ? criUser(spec.user) : {}),
        namespaceOptions: { ...namespaces },
      },
    },
  };
}

export function stateOf(state: ContainerState): CoreState {
  switch (state) {
    case ContainerState.CONTAINER_CREATED:
      return "created";
    case ContainerState.CONTAINER_RUNNING:
      return "running";
    case ContainerState.CONTAINER_EXITED:
      return "exited";
    default:
      return "unknown";
  }
}

/** CRI times are Unix nanoseconds; 0 means unset. */
export function nanosToDate(ns: bigint | number | undefined): Date | undefined {
  if (ns === undefined) return undefined;
  const n = BigInt(ns);
  return n > 0n ? new Date(Number(n / 1_000_000n)) : undefined;
}

/** What a verbose ContainerStatus adds (containerd and CRI-O put JSON under info.info): pid and pod. */
export function verboseContainerInfo(info: Record<string, string>): { pid?: number; sandboxId?: string } {
  try {
    const parsed = JSON.parse(info.info ?? "{}") as { pid?: unknown; sandboxID?: unknown };
    return {
      ...(typeof parsed.pid === "number" && parsed.pid > 0 ? { pid: parsed.pid } : {}),
      ...(typeof parsed.sandboxID === "string" && parsed.sandboxID ? { sandboxId: parsed.sandboxID } : {}),
    };
  } catch {
    return {};
  }
}

/** A mapping whose host port is chosen, as reported. */
function boundPort(p: PortMapping): BoundPort {
  return {
    containerPort: p.containerPort,
    protocol: p.protocol ?? "tcp",
    hostIp: p.hostIp ?? "",
    hostPort: p.hostPort ?? 0,
  };
}

/** The ports annotation read back (the runtime's answer: bounded, and each entry checked). */
export function portsFromAnnotation(value: string | undefined): BoundPort[] {
  if (!value || value.length > MAX_PORTS_ANNOTATION) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return [];
  }
  const port = (v: unknown) =>
    Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535 ? (v as number) : 0;
  const out: BoundPort[] = [];
  for (const e of Array.isArray(parsed) ? parsed.slice(0, MAX_PORTS) : []) {
    if (typeof e !== "object" || e === null) continue;
    const { containerPort, protocol, hostIp, hostPort } = e as Record<string, unknown>;
    if (!port(containerPort) || !port(hostPort) || (protocol !== "tcp" && protocol !== "udp")) continue;
    if (typeof hostIp !== "string" || hostIp.length > 64) continue;
    out.push({ containerPort: containerPort as number, protocol, hostIp, hostPort: hostPort as number });
  }
  return out;
}

/** What a Container and a ContainerStatus both say, around the optional fields only a status may add. */
function containerInfo(
  c: Pick<Container, "id" | "metadata" | "image" | "imageRef" | "state" | "labels" | "annotations">,
  more: Pick<ContainerInfo, "exitCode" | "createdAt" | "startedAt" | "finishedAt" | "pid" | "ip">,
): ContainerInfo {
  return {
    id: c.id,
    name: c.metadata?.name ?? "",
    image: c.image?.image || c.imageRef,
    state: stateOf(c.state),
    ...more,
    labels: { ...c.labels },
    // Bound while it runs (a stopped pod's ports are let go).
    ports:
      c.state === ContainerState.CONTAINER_RUNNING
        ? portsFromAnnotation(c.annotations?.[PORTS_ANNOTATION])
        : [],
  };
}

export function infoFromStatus(s: ContainerStatus, extra: { ip?: string; pid?: number } = {}): ContainerInfo {
  const created = nanosToDate(s.createdAt);
  const started = nanosToDate(s.startedAt);
  const finished = nanosToDate(s.finishedAt);
  return containerInfo(s, {
    ...(s.state === ContainerState.CONTAINER_EXITED ? { exitCode: s.exitCode } : {}),
    ...(created ? { createdAt: created } : {}),
    ...(started ? { startedAt: started } : {}),
    ...(finished ? { finishedAt: finished } : {}),
    ...(extra.pid && s.state === ContainerState.CONTAINER_RUNNING ? { pid: extra.pid } : {}),
    ...(extra.ip ? { ip: extra.ip } : {}),
  });
}

export function infoFromContainer(c: Container): ContainerInfo {
  const created = nanosToDate(c.createdAt);
  return containerInfo(c, created ? { createdAt: created } : {});
}

const u64 = (v: { value: bigint } | undefined) => (v === undefined ? undefined : Number(v.value));
/** Above this, a memory "limit" is the kernel's page-rounded int64 max: no limit. */
const NO_LIMIT = 2n ** 60n;

export function statsFrom(s: ContainerStats): CoreStats {
  const cpu = u64(s.cpu?.usageCoreNanoSeconds);
  const working = s.memory?.workingSetBytes?.value;
  const available = s.memory?.availableBytes?.value;
  // CRI reports what is left under the limit (limit - working set), not the limit itself.
  const limit =
    working !== undefined && available !== undefined && available > 0n && working + available < NO_LIMIT
      ? Number(working + available)
      : undefined;
  return {
    time: nanosToDate(s.cpu?.timestamp ?? s.memory?.timestamp) ?? new Date(),
    ...(cpu !== undefined ? { cpuNanos: cpu } : {}),
    ...(working !== undefined ? { memoryBytes: Number(working) } : {}),
    ...(limit !== undefined ? { memoryLimitBytes: limit } : {}),
  };
}

const ACTIONS: Record<number, string> = {
  [ContainerEventType.CONTAINER_CREATED_EVENT]: "create",
  [ContainerEventType.CONTAINER_STARTED_EVENT]: "start",
  [ContainerEventType.CONTAINER_STOPPED_EVENT]: "stop",
  [ContainerEventType.CONTAINER_DELETED_EVENT]: "destroy",
};

/** A container event; `attributes` are the container's labels when the runtime sent its status. */
export function eventFrom(e: ContainerEventResponse): RuntimeEvent {
  const status = e.containersStatuses.find((c) => c.id === e.containerId);
  return {
    time: nanosToDate(e.createdAt) ?? new Date(),
    type: "container",
    action: ACTIONS[e.containerEventType] ?? `event-${e.containerEventType}`,
    id: e.containerId,
    ...(status ? { attributes: { ...status.labels } } : {}),
  };
}

/** Whether the labels carry every wanted key=value. */
export function labelsMatch(have: Record<string, string> | undefined, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => have?.[k] === v);
}

/** SIGKILL in the spellings users write; the CRI can send no other signal on demand. */
export function isSigkill(signal: string | number | undefined): boolean {
  if (signal === undefined) return true;
  const s = String(signal).toUpperCase();
  return s === "SIGKILL" || s === "KILL" || s === "9";
}

// Map-valued fields of PodSandboxConfig: their keys are the user's, not field names.
const MAP_FIELDS = new Set(["labels", "annotations", "sysctls", "unified"]);

function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => {
      const key = camel(k);
      return [key, MAP_FIELDS.has(key) ? v : camelKeys(v)];
    }),
  );
}

/**
 * The sandbox config from a verbose PodSandboxStatus, where the runtime keeps it (containerd: the Go
 * JSON of the config under info.config, snake_case names). The CRI wants it back on CreateContainer
 * (containerd takes the container's log directory from it). Undefined when the runtime does not say.
 */
export function sandboxConfigFromVerbose(
  info: Record<string, string>,
): DeepPartial<PodSandboxConfig> | undefined {
  const text = info.info;
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as { config?: unknown };
    if (!parsed.config || typeof parsed.config !== "object") return undefined;
    return camelKeys(parsed.config) as DeepPartial<PodSandboxConfig>;
  } catch {
    return undefined;
  }
}
