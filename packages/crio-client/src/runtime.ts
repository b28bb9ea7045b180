// The runtime-core Runtime over the Kubernetes CRI (runtime.v1): containerd's CRI plugin or CRI-O.
//
// Each container gets a pod sandbox of its own (labelled OWNED_POD_LABEL, removed with the container)
// unless spec.pod names an existing one. Output is read from the CRI log files the runtime writes under
// the pod's log directory, so this adapter must run on the runtime's host, as the kubelet does.
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { DeepPartial } from "@berth/grpc";
import type * as core from "@berth/runtime-core";
import {
  ConflictError,
  envList,
  NotFoundError,
  TimeoutError,
  UnavailableError,
  UnsupportedError,
} from "@berth/runtime-core";
import {
  AdapterBase,
  adapterErrors,
  capabilitiesWithout,
  check,
  sleep as kitSleep,
  logDirectoryInside,
  logFileInside,
  readCriLogs,
  runContainer,
  signalOnly,
} from "@berth/runtime-core/internal";
import { CriClient, type CriConnectOptions } from "./client.js";
import { isNoSuchUser } from "./errors.js";
import {
  ContainerEventType,
  ContainerState,
  type ContainerStatus,
  NamespaceMode,
  type PodSandboxConfig,
  type PodSandboxMetadata,
} from "./generated/runtime/v1/api.js";
import { hostPorts } from "./host-port.js";
import {
  checkCriSpec,
  containerConfig,
  eventFrom,
  infoFromContainer,
  infoFromStatus,
  isSigkill,
  LOG_DIRECTORY_ANNOTATION,
  labelsMatch,
  OWNED_POD_LABEL,
  type PodNamespaces,
  podNamespaces,
  podSandboxConfig,
  safeName,
  sandboxConfigFromVerbose,
  statsFrom,
  verboseContainerInfo,
} from "./runtime-map.js";

/** Where pod log directories go unless `logRoot` says otherwise (beside the kubelet's /var/log/pods). */
export const DEFAULT_CRI_LOG_ROOT = "/var/log/berth/pods";
const DEFAULT_POLL_MS = 100;
/**
 * After the runtime reports EXITED, how long logs keep reading before they end. containerd 1.6 updates
 * the status only after its copy of the container's pipes has finished, but the last record is written
 * by a separate goroutine that may still be running then; this covers it.
 */
const LOG_SETTLE_MS = 50;
/** With container events, how often wait() still looks at the status (an event can be missed). */
const EVENT_BACKSTOP_MS = 2_000;
/** Status polls start at the poll interval and slow down to this while nothing changes. */
const MAX_POLL_MS = 1_000;

/** Poll intervals that grow by half each time, from `first` up to MAX_POLL_MS (or `first`, if larger). */
function backoff(first: number): { next(): number; reset(): void } {
  let current = first;
  return {
    next: () => {
      const now = current;
      current = Math.min(Math.max(first, MAX_POLL_MS), Math.ceil(current * 1.5));
      return now;
    },
    reset: () => {
      current = first;
    },
  };
}

/** How a CriRuntime names, runs, logs and watches what it creates (`CriRuntime.connect` also takes
 *  CriConnectOptions). */
export interface CriRuntimeOptions {
  /**
   * Directory under which pods get their log directory (`<namespace>_<name>_<uid>`). It must be on the
   * runtime's host: the runtime writes the logs and this adapter reads them. Default /var/log/berth/pods.
   */
  logRoot?: string;
  /** Namespace in the metadata of pods the adapter creates (default "berth"). */
  namespace?: string;
  /** RuntimeClass handler for pods the adapter creates ("" = the runtime's default). */
  runtimeHandler?: string;
  /**
   * Whether the runtime serves GetContainerEvents (containerd 1.7+; 1.6 does not). `CriRuntime.connect`
   * finds out; the constructor assumes not.
   */
  containerEvents?: boolean;
  /** Milliseconds between status polls while waiting or following logs (default 100). */
  pollInterval?: number;
}

type Call = { signal?: AbortSignal | undefined };
const opt = signalOnly;
/** Where a call's arguments go, for their ValidationError. */
const at = (operation: string) => errors.at(operation);
const NEWLINE = Buffer.from("\n");
const EXITED = ContainerState.CONTAINER_EXITED;

const errors = adapterErrors("cri");
const { unsupported } = errors;
const throwIfAborted = (signal: AbortSignal | undefined, operation: string) =>
  errors.throwIfAborted(operation, signal);
const sleep = (ms: number, signal: AbortSignal | undefined, operation: string) =>
  kitSleep(ms, signal, () => errors.aborted(operation, signal));

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** containerd serves GetContainerEvents from 1.7: by its version, when the runtime says it is containerd. */
export function containerdHasEvents(runtimeName: string, runtimeVersion: string): boolean | undefined {
  if (runtimeName !== "containerd") return undefined;
  const m = /^v?(\d+)\.(\d+)/.exec(runtimeVersion);
  if (!m) return undefined;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 1 || (major === 1 && minor >= 7);
}

/**
 * Whether the runtime serves GetContainerEvents. containerd is known by its version (1.7 and later);
 * another runtime is asked: one without it answers UNIMPLEMENTED at once, one with it sends nothing until
 * a container changes, so a stream still open after `timeout` ms counts as yes (a runtime too busy to
 * refuse within `timeout` is then taken to have them, and events() fails with UnsupportedError later).
 */
export async function probeContainerEvents(
  cri: CriClient,
  options: { timeout?: number; signal?: AbortSignal } = {},
): Promise<boolean> {
  const v = await cri.version(opt(options)).catch(() => undefined);
  const known = v && containerdHasEvents(v.runtimeName, v.runtimeVersion);
  if (known !== undefined) return known;
  try {
    for await (const _ of cri.getContainerEvents({ timeout: options.timeout ?? 1_000, ...opt(options) })) {
      return true;
    }
    return true;
  } catch (err) {
    if (err instanceof UnsupportedError) return false;
    if (err instanceof TimeoutError) return true;
    throw err;
  }
}

export class CriRuntime extends AdapterBase implements core.Runtime {
  readonly backend = "cri";
  readonly capabilities: core.Capabilities;
  /** The directory pods' log directories go under (`options.logRoot`, default /var/log/berth/pods). */
  readonly logRoot: string;
  /** The namespace in the metadata of pods this adapter creates (`options.namespace`, default "berth"). */
  readonly namespace: string;
  readonly #runtimeHandler: string;
  readonly #poll: number;

  constructor(
    /** The CRI client the adapter calls (usable directly for what the Runtime does not cover). */
    readonly cri: CriClient,
    options: CriRuntimeOptions = {},
  ) {
    super(errors);
    this.logRoot = options.logRoot ?? DEFAULT_CRI_LOG_ROOT;
    this.namespace = options.namespace ?? "berth";
    this.#runtimeHandler = options.runtimeHandler ?? "";
    this.#poll = options.pollInterval ?? DEFAULT_POLL_MS;
    // Ports: the pod's port mappings (the CNI portmap plugin); without a hostPort the adapter picks a free
    // one. Bridge network: the pod network the node's CNI configuration provides. execStdin: over SPDY (or
    // WebSocket v5) stdin can be closed; WebSocket v4 (all containerd 1.6 offers) cannot close it without
    // closing everything, so there a command reading to EOF would never end (empty stdin works: ExecSync).
    this.capabilities = {
      // tmpfs: CRI mounts have no type (bind mounts only). signals: no Kill in the CRI, StopContainer with
      // no grace period is SIGKILL and nothing else can be sent. pause: the CRI has none.
      ...capabilitiesWithout("tmpfs", "signals", "pause"),
      events: options.containerEvents ?? false,
    };
  }

  /** Connect like `CriClient.connect` (probing, runtime.v1 checked), and find out whether events work. */
  static async connect(options: CriConnectOptions & CriRuntimeOptions = {}): Promise<CriRuntime> {
    const { logRoot, namespace, runtimeHandler, containerEvents, pollInterval, ...connect } = options;
    const cri = await CriClient.connect(connect);
    try {
      const events = containerEvents ?? (await probeContainerEvents(cri, opt(connect)));
      return new CriRuntime(cri, {
        ...(logRoot !== undefined ? { logRoot } : {}),
        ...(namespace !== undefined ? { namespace } : {}),
        ...(runtimeHandler !== undefined ? { runtimeHandler } : {}),
        ...(pollInterval !== undefined ? { pollInterval } : {}),
        containerEvents: events,
      });
    } catch (err) {
      cri.close();
      throw err;
    }
  }

  async info(options?: Call): Promise<core.RuntimeInfo> {
    options = check.call(at("info"), options);
    const [v, s] = await Promise.all([this.cri.version(opt(options)), this.cri.status(opt(options))]);
    const ready = s.status?.conditions.find((c) => c.type === "RuntimeReady");
    if (ready && !ready.status) {
      throw new UnavailableError(
        `${v.runtimeName} is not ready: ${[ready.reason, ready.message].filter(Boolean).join(": ")}`,
        { operation: "Status", backend: "cri" },
      );
    }
    return {
      backend: "cri",
      name: v.runtimeName,
      version: v.runtimeVersion,
      ...(v.runtimeApiVersion ? { apiVersion: v.runtimeApiVersion } : {}),
    };
  }

  async pull(image: string, options: core.PullOptions = {}): Promise<void> {
    [image, options] = check.pull(at("pull"), image, options);
    if (options.platform !== undefined) {
      throw unsupported("pull", "the CRI pulls for the node's platform only (no platform option)");
    }
    // The CRI reports no progress: say when the pull starts and when it is done.
    options.onProgress?.({ status: `Pulling ${image}` });
    const ref = await this.cri.pullImage(image, {
      ...opt(options),
      ...(options.auth ? { auth: options.auth } : {}),
    });
    options.onProgress?.({ id: ref, status: `Pulled ${image}` });
  }

  async create(spec: core.ContainerSpec, options?: Call): Promise<string> {
    [spec, options] = check.create(at("create"), spec, options);
    checkCriSpec(spec);
    const signal = options.signal;
    const { image } = await this.cri.imageStatus(spec.image, opt(options));
    if (!image) {
      throw new NotFoundError(
        `create: image ${spec.image} is not present (create does not pull; run() does)`,
        {
          operation: "create",
          backend: "cri",
        },
      );
    }
    return this.#create(spec, signal);
  }

  /**
   * Calls that create something are not cancelled in flight (the runtime might finish the work anyway);
   * an abort is honoured when each returns, and undoes what was made before the AbortedError.
   */
  async #create(spec: core.ContainerSpec, signal: AbortSignal | undefined): Promise<string> {
    const name = spec.name ?? `berth-${randomBytes(6).toString("hex")}`;
    if (spec.pod !== undefined) {
      const { config, namespaces } = await this.#sandbox(spec.pod, signal);
      throwIfAborted(signal, "create");
      const id = await this.#createContainer(spec, spec.pod, name, namespaces, config);
      if (signal?.aborted) {
        await this.cri.removeContainer(id).catch(() => {});
        throw errors.aborted("create", signal);
      }
      return id;
    }
    const ports = await hostPorts(spec.ports);
    const uid = randomUUID();
    const logDirectory = join(this.logRoot, podLogDirName({ namespace: this.namespace, name, uid }));
    let pod: string | undefined;
    let id: string | undefined;
    try {
      await mkdir(logDirectory, { recursive: true });
      const config = podSandboxConfig(
        { ...spec, ...(ports ? { ports } : {}) },
        { name, uid, namespace: this.namespace, logDirectory },
      );
      pod = await this.cri.runPodSandbox(config, { runtimeHandler: this.#runtimeHandler });
      throwIfAborted(signal, "create");
      id = await this.#createContainer(
        { ...spec, ...(ports ? { ports } : {}) },
        pod,
        name,
        podNamespaces(spec),
        config,
      );
      throwIfAborted(signal, "create");
      return id;
    } catch (err) {
      if (id !== undefined) await this.cri.removeContainer(id).catch(() => {});
      if (pod !== undefined) await this.#removePod(pod).catch(() => {});
      await rm(logDirectory, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
  }

  async #createContainer(
    spec: core.ContainerSpec,
    pod: string,
    name: string,
    namespaces: PodNamespaces,
    sandbox: DeepPartial<PodSandboxConfig> | undefined,
  ): Promise<string> {
    try {
      return await this.cri.createContainer(pod, containerConfig(spec, name, namespaces), sandbox);
    } catch (err) {
      // containerd looks a user name up in the image's /etc/passwd at create: "no users found".
      if (err instanceof NotFoundError && spec.user !== undefined && isNoSuchUser(err.daemonMessage ?? "")) {
        throw errors.error(
          NotFoundError,
          "create",
          `user "${spec.user}" is not in the image (${err.daemonMessage})`,
          {
            status: err.status,
            daemonMessage: err.daemonMessage,
            cause: err,
          },
        );
      }
      throw err;
    }
  }

  /** An existing pod's config (CreateContainer wants it back) and the namespaces its containers share. */
  async #sandbox(
    pod: string,
    signal: AbortSignal | undefined,
  ): Promise<{ config: DeepPartial<PodSandboxConfig> | undefined; namespaces: PodNamespaces }> {
    const res = await this.cri.podSandboxStatus(pod, { verbose: true, ...opt({ signal }) });
    const status = res.status;
    const options = status?.linux?.namespaces?.options;
    const namespaces: PodNamespaces = {
      network: options?.network ?? NamespaceMode.POD,
      pid: options?.pid ?? NamespaceMode.CONTAINER,
      ipc: options?.ipc ?? NamespaceMode.POD,
    };
    // containerd keeps the config in its verbose status. Others (CRI-O) keep the pod's log directory
    // themselves: the config is then only what the status tells.
    const config =
      sandboxConfigFromVerbose(res.info) ??
      (status
        ? {
            ...(status.metadata ? { metadata: status.metadata } : {}),
            labels: status.labels,
            annotations: status.annotations,
            linux: { securityContext: { namespaceOptions: { ...namespaces } } },
          }
        : undefined);
    return { config, namespaces };
  }

  async start(id: string, options?: Call): Promise<void> {
    [id, options] = check.id(at("start"), id, options);
    await this.cri.startContainer(id, opt(options));
  }

  async #status(id: string, options?: Call): Promise<ContainerStatus> {
    const { status } = await this.cri.containerStatus(id, opt(options));
    if (!status) {
      throw errors.error(NotFoundError, "ContainerStatus", `no status for container ${id}`);
    }
    return status;
  }

  /** The pod a container is in (ContainerStatus does not say; the listing does). */
  async #podOf(id: string, options?: Call): Promise<string | undefined> {
    const list = await this.cri.listContainers({ id }, opt(options));
    return list.find((c) => c.id === id)?.podSandboxId;
  }

  async inspect(id: string, options?: Call): Promise<core.ContainerInfo> {
    [id, options] = check.id(at("inspect"), id, options);
    const res = await this.cri.containerStatus(id, { verbose: true, ...opt(options) });
    if (!res.status) {
      throw errors.error(NotFoundError, "ContainerStatus", `no status for container ${id}`);
    }
    const { pid, sandboxId } = verboseContainerInfo(res.info);
    const pod = sandboxId ?? (await this.#podOf(res.status.id, options));
    let ip: string | undefined;
    if (pod) {
      try {
        ip = (await this.cri.podSandboxStatus(pod, opt(options))).status?.network?.ip || undefined;
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    return infoFromStatus(res.status, { ...(ip ? { ip } : {}), ...(pid ? { pid } : {}) });
  }

  async list(
    options: Call & { labels?: Record<string, string>; all?: boolean } = {},
  ): Promise<core.ContainerInfo[]> {
    options = check.list(at("list"), options);
    const containers = await this.cri.listContainers(
      {
        ...(options.labels ? { labelSelector: options.labels } : {}),
        ...(options.all ? {} : { state: { state: ContainerState.CONTAINER_RUNNING } }),
      },
      opt(options),
    );
    // Newest first, as `docker ps` lists.
    return containers
      .map(infoFromContainer)
      .sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0));
  }

  async wait(id: string, options?: Call): Promise<core.ExitStatus> {
    [id, options] = check.id(at("wait"), id, options);
    const status = await this.#exited(id, options?.signal);
    const finishedAt = infoFromStatus(status).finishedAt;
    return { exitCode: status.exitCode, ...(finishedAt ? { finishedAt } : {}) };
  }

  /** The CRI has no wait: poll the status, woken early by container events where the runtime has them. */
  async #exited(id: string, signal: AbortSignal | undefined): Promise<ContainerStatus> {
    const events = this.capabilities.events ? this.#watchEvents(id, signal) : undefined;
    const interval = backoff(this.#poll);
    try {
      for (;;) {
        const status = await this.#status(id, { signal });
        if (status.state === EXITED) return status;
        await (events ? events.next(EVENT_BACKSTOP_MS) : sleep(interval.next(), signal, "wait"));
      }
    } finally {
      events?.close();
    }
  }

  /** `next(ms)` resolves early on an event of the container; if the stream fails, it is a plain poll. */
  #watchEvents(
    id: string,
    signal: AbortSignal | undefined,
  ): { next(ms: number): Promise<void>; close(): void } {
    const ac = new AbortController();
    let seen = false;
    let failed = false;
    let wake: (() => void) | undefined;
    (async () => {
      for await (const e of this.cri.getContainerEvents({ signal: ac.signal })) {
        if (e.containerId !== id) continue;
        if (
          e.containerEventType === ContainerEventType.CONTAINER_STOPPED_EVENT ||
          e.containerEventType === ContainerEventType.CONTAINER_DELETED_EVENT
        ) {
          seen = true;
          wake?.();
        }
      }
    })().catch(() => {
      failed = true;
      wake?.();
    });
    return {
      next: async (ms) => {
        if (seen) {
          seen = false;
          return;
        }
        const wait = new AbortController();
        const onAbort = () => wait.abort();
        signal?.addEventListener("abort", onAbort, { once: true });
        wake = () => wait.abort();
        try {
          await sleep(failed ? this.#poll : ms, wait.signal, "wait");
        } catch {
          throwIfAborted(signal, "wait");
        } finally {
          wake = undefined;
          seen = false;
          signal?.removeEventListener("abort", onAbort);
        }
      },
      close: () => ac.abort(),
    };
  }

  async *logs(id: string, options: core.LogsOptions = {}): AsyncIterable<core.LogEntry> {
    [id, options] = check.logs(at("logs"), id, options);
    const { signal } = options;
    const status = await this.#status(id, options);
    const path = status.logPath;
    if (!path) throw unsupported("logs", `container ${id} has no log path (its pod has no log directory)`);
    // The runtime creates the file when the container starts.
    if (!(await exists(path))) {
      if (!options.follow || status.state === EXITED) return;
      const interval = backoff(this.#poll);
      for (;;) {
        await sleep(interval.next(), signal, "logs");
        if (await exists(path)) break;
        const now = await this.#statusOrGone(id, signal);
        if (!now || now.state === EXITED) {
          if (await exists(path)) break;
          return;
        }
      }
    }
    // Following ends once the container has exited (or is gone) and its last output is read. The status
    // is asked less often while the log stays quiet; new output makes it ask promptly again.
    const interval = backoff(this.#poll);
    let nextCheck = 0;
    const until = async () => {
      if (Date.now() < nextCheck) return false;
      const now = await this.#statusOrGone(id, signal);
      if (now && now.state !== EXITED) {
        nextCheck = Date.now() + interval.next();
        return false;
      }
      await sleep(LOG_SETTLE_MS, signal, "logs");
      return true;
    };
    for await (const e of readCriLogs(path, {
      follow: options.follow ?? false,
      ...(options.since ? { since: options.since } : {}),
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
      ...(signal ? { signal } : {}),
      until,
      pollInterval: this.#poll,
      backend: "cri",
    })) {
      interval.reset();
      nextCheck = Math.min(nextCheck, Date.now() + this.#poll);
      // A record ends with a newline the runtime took off, unless the output ended without one (P).
      yield { stream: e.stream, data: e.partial ? e.data : Buffer.concat([e.data, NEWLINE]), time: e.time };
    }
  }

  async #statusOrGone(id: string, signal: AbortSignal | undefined): Promise<ContainerStatus | undefined> {
    try {
      return await this.#status(id, { signal });
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async exec(id: string, command: string[], options: core.ExecOptions = {}): Promise<core.ExecResult> {
    [id, command, options] = check.exec(at("exec"), id, command, options);
    // CRI exec runs the command as given, as the container's user, in its working directory.
    if (options.user !== undefined) throw unsupported("exec", "the CRI has no exec user");
    if (options.workdir !== undefined) throw unsupported("exec", "the CRI has no exec working directory");
    if (options.env !== undefined && envList(options.env).length > 0) {
      throw unsupported("exec", "the CRI has no exec environment");
    }
    const stdin = options.stdin;
    const stdinBytes =
      stdin === undefined ? 0 : typeof stdin === "string" ? Buffer.byteLength(stdin) : stdin.byteLength;
    if (stdinBytes > 0) {
      // stdin needs a stream whose stdin can be closed: SPDY (or WebSocket v5), never v4, where the
      // command would wait for an EOF that cannot be sent.
      const session = await this.cri.exec(id, command, {
        stdin: true,
        ...(options.tty ? { tty: true } : {}),
        ...opt(options),
        ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
      });
      if (!session.stdinClosable) {
        session.close();
        throw unsupported(
          "exec",
          `stdin needs a stream that can close it; the runtime offered only ${session.transport} ${session.protocol}`,
        );
      }
      const out = await session.output(typeof stdin === "string" ? stdin : Buffer.from(stdin as Uint8Array));
      return { exitCode: out.exitCode, stdout: out.stdout, stderr: out.stderr };
    }
    if (options.tty) {
      // A TTY needs the streaming exec; its output is one stream.
      const session = await this.cri.exec(id, command, {
        tty: true,
        ...opt(options),
        ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
      });
      const out = await session.output();
      return { exitCode: out.exitCode, stdout: out.stdout, stderr: out.stderr };
    }
    // The runtime enforces the timeout (in whole seconds, rounded up) and kills the command then.
    const res = await this.cri.execSync(id, command, {
      ...opt(options),
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    });
    return { exitCode: res.exitCode, stdout: res.stdout, stderr: res.stderr };
  }

  async stop(id: string, options: core.StopOptions = {}): Promise<void> {
    [id, options] = check.stop(at("stop"), id, options);
    if (options.signalName !== undefined) {
      throw unsupported("stop", "the CRI sends the image's stop signal (no signalName option)");
    }
    // containerd 2.x answers OK to stopping an unknown id (the CRI says stop is idempotent): look first.
    const status = await this.#status(id, options);
    await this.cri.stopContainer(status.id, options.graceSeconds ?? 10, opt(options));
  }

  async kill(id: string, signalName = "SIGKILL", options?: Call): Promise<void> {
    [id, signalName, options] = check.kill(at("kill"), id, signalName, options);
    if (!isSigkill(signalName)) {
      throw unsupported("kill", `the CRI can only kill (SIGKILL); it cannot send ${signalName}`);
    }
    const status = await this.#status(id, options);
    if (status.state !== ContainerState.CONTAINER_RUNNING) {
      throw errors.error(ConflictError, "kill", `container ${id} is not running`);
    }
    await this.cri.stopContainer(status.id, 0, opt(options));
  }

  async remove(id: string, options: Call & { force?: boolean } = {}): Promise<void> {
    [id, options] = check.remove(at("remove"), id, options);
    const status = await this.#status(id, options);
    const running = status.state === ContainerState.CONTAINER_RUNNING;
    if (running && !options.force) {
      throw new ConflictError(`remove: container ${id} is running (stop it, or remove with force)`, {
        operation: "remove",
        backend: "cri",
      });
    }
    const pod = await this.#podOf(status.id, options);
    if (running) await this.cri.stopContainer(status.id, 0, opt(options));
    await this.cri.removeContainer(status.id, opt(options));
    // As the kubelet does: the runtime leaves the log file to whoever asked for it. Only inside the log
    // root, though: the path is the runtime's word.
    const log = status.logPath && (await logFileInside(this.logRoot, status.logPath));
    if (log) await rm(log, { force: true }).catch(() => {});
    if (pod) await this.#releasePod(pod, options);
  }

  /** Take down a pod this adapter created once its last container is gone. */
  async #releasePod(pod: string, options?: Call): Promise<void> {
    let labels: Record<string, string>;
    try {
      labels = (await this.cri.podSandboxStatus(pod, opt(options))).status?.labels ?? {};
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    if (labels[OWNED_POD_LABEL] !== "true") return;
    if ((await this.cri.listContainers({ podSandboxId: pod }, opt(options))).length > 0) return;
    await this.#removePod(pod, options);
  }

  async #removePod(pod: string, options?: Call): Promise<void> {
    const status = await this.cri.podSandboxStatus(pod, opt(options)).then(
      (r) => r.status,
      () => undefined,
    );
    await this.cri.stopPodSandbox(pod, opt(options));
    await this.cri.removePodSandbox(pod, opt(options));
    const annotated = status?.annotations[LOG_DIRECTORY_ANNOTATION];
    // Only a directory of the log root named for this very pod, as create() named it.
    const dir = annotated && (await logDirectoryInside(this.logRoot, annotated));
    if (dir && status?.metadata && basename(dir) === podLogDirName(status.metadata)) {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  async pause(id: string, options?: Call): Promise<void> {
    check.id(at("pause"), id, options);
    throw unsupported("pause", "the CRI has no pause");
  }

  async unpause(id: string, options?: Call): Promise<void> {
    check.id(at("unpause"), id, options);
    throw unsupported("unpause", "the CRI has no pause");
  }

  async stats(id: string, options?: Call): Promise<core.ContainerStats> {
    [id, options] = check.id(at("stats"), id, options);
    const stats = await this.cri.containerStats(id, opt(options));
    if (!stats) {
      throw errors.error(NotFoundError, "ContainerStats", `no sample for ${id}`);
    }
    return statsFrom(stats);
  }

  async *events(options: Call & { labels?: Record<string, string> } = {}): AsyncIterable<core.RuntimeEvent> {
    options = check.events(at("events"), options);
    if (!this.capabilities.events) {
      throw unsupported("events", "the runtime does not serve GetContainerEvents (containerd 1.7+ does)");
    }
    for await (const e of this.cri.getContainerEvents(opt(options))) {
      const event = eventFrom(e);
      if (options.labels && !labelsMatch(event.attributes, options.labels)) continue;
      yield event;
    }
  }

  async run(spec: core.ContainerSpec, options: core.RunOptions = {}): Promise<core.RunResult> {
    [spec, options] = check.run(at("run"), spec, options);
    checkCriSpec(spec);
    const call = opt(options);
    return runContainer(errors, options, {
      ensureImage: async () => {
        const { image } = await this.cri.imageStatus(spec.image, call);
        if (!image) await this.pull(spec.image, options);
      },
      create: () => this.create(spec, call),
      execute: async (id, output) => {
        // Not cancelled in flight: a start the runtime completes anyway is undone by the run's discard.
        await this.cri.startContainer(id);
        throwIfAborted(options.signal, "run");
        await output.drain(this.logs(id, { follow: true, ...call }));
        return (await this.wait(id, call)).exitCode;
      },
      remove: (id) => this.remove(id, { force: true }),
      discard: (id) => this.remove(id, { force: true }),
    });
  }

  async close(): Promise<void> {
    this.cri.close();
  }
}

/** The log directory name create() gives a pod, as the kubelet names them: namespace_name_uid. */
export function podLogDirName(metadata: Pick<PodSandboxMetadata, "namespace" | "name" | "uid">): string {
  return `${metadata.namespace}_${safeName(metadata.name)}_${metadata.uid}`;
}
