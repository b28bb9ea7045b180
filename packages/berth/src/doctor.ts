// `berth-sdk doctor`: finds every runtime this machine can reach (discover()), runs a short subset of the
// conformance checks on each, and says for every failure why and what to do. Everything it creates carries
// the label berth.doctor=<run id> and is removed before it returns, also when aborted.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  type ConnectAttempt,
  type ConnectedRuntime,
  type ContainerSpec,
  isBerthError,
  type Runtime,
  type RuntimeEvent,
  TimeoutError,
  UnsupportedError,
  ValidationError,
} from "@berth/runtime-core";
import type { EnvMap } from "@berth/runtime-core/internal";
import { type Diagnosis, DOCTOR_CHECKS, type DoctorCheckName, diagnose } from "./diagnose.js";
import type {
  DoctorBackend,
  DoctorCheck,
  DoctorOptions,
  DoctorProbe,
  DoctorProblem,
  DoctorReport,
} from "./doctor-report.js";
import { discover, providers } from "./index.js";

export type { DiagnoseContext, Diagnosis, DoctorCheckName, ProblemKind } from "./diagnose.js";
export { DOCTOR_CHECKS, diagnose } from "./diagnose.js";
export { formatReport } from "./doctor-format.js";
export type * from "./doctor-report.js";

/** The image the doctor pulls and runs unless told otherwise. */
export const DEFAULT_DOCTOR_IMAGE = "docker.io/library/busybox:latest";
/** The label key on everything the doctor creates; its value is the run's id. */
export const DOCTOR_LABEL = "berth.doctor";

/** berth-sdk's version, from its package.json ("unknown" when that cannot be read). */
export function berthVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

function problemOf(err: unknown, diagnosis: Diagnosis): DoctorProblem {
  const e = (err ?? {}) as Partial<Error> & { code?: unknown };
  const error: DoctorProblem["error"] = { name: typeof e.name === "string" ? e.name : typeof err };
  if (typeof e.code === "string") error.code = e.code;
  if (isBerthError(err)) {
    if (err.operation) error.operation = err.operation;
    if (err.status !== undefined) error.status = err.status;
    if (err.daemonMessage) error.daemonMessage = err.daemonMessage;
  }
  return { ...diagnosis, message: err instanceof Error ? err.message : String(err), error };
}

/** The check did not apply; its reason goes into `detail`. */
class Skip {
  constructor(readonly reason: string) {}
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");

/** Rejects when the signal fires, so a call that ignores its signal cannot hold the doctor up. */
function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fire = () => reject(signal.reason);
    if (signal.aborted) fire();
    else signal.addEventListener("abort", fire, { once: true });
  });
}

/** Removes every container with these labels; returns how many there were. */
async function sweep(rt: Runtime, labels: Record<string, string>, signal: AbortSignal): Promise<number> {
  const found = await rt.list({ labels, all: true, signal });
  for (const c of found) await rt.remove(c.id, { force: true, signal });
  return found.length;
}

interface RunContext {
  image: string;
  timeout: number;
  labels: Record<string, string>;
  signal: AbortSignal | undefined;
  onCheck: DoctorOptions["onCheck"];
}

async function checkBackend(connected: ConnectedRuntime, ctx: RunContext): Promise<DoctorBackend> {
  const rt = connected.runtime;
  const { info, candidate } = connected;
  const b: DoctorBackend = {
    backend: rt.backend,
    endpoint: candidate.endpoint,
    source: candidate.source,
    reachable: true,
    ok: false,
    runtime: {
      name: info.name,
      version: info.version,
      ...(info.apiVersion ? { apiVersion: info.apiVersion } : {}),
      ...(info.os ? { os: info.os } : {}),
      ...(info.arch ? { arch: info.arch } : {}),
    },
    capabilities: { ...rt.capabilities },
    checks: [],
  };
  const spec = (command: string[], extra: Record<string, string> = {}): ContainerSpec => ({
    image: ctx.image,
    command,
    labels: { ...ctx.labels, ...extra },
  });
  const failed = new Set<DoctorCheckName>();

  /** Runs one check under the per-check limit; a prerequisite that failed makes it a skip. */
  const check = async (
    name: DoctorCheckName,
    needs: DoctorCheckName[],
    fn: (signal: AbortSignal) => Promise<string | Skip>,
  ): Promise<void> => {
    const t0 = performance.now();
    const done = (c: Omit<DoctorCheck, "name" | "durationMs">) => {
      const result: DoctorCheck = { name, durationMs: Math.round(performance.now() - t0), ...c };
      if (c.status === "fail") failed.add(name);
      b.checks.push(result);
      ctx.onCheck?.(b, result);
    };
    const blocked = needs.filter((n) => failed.has(n));
    if (blocked.length > 0) return done({ status: "skip", detail: `needs ${blocked.join(", ")}` });
    if (ctx.signal?.aborted) return done({ status: "skip", detail: "aborted" });
    const timer = AbortSignal.timeout(ctx.timeout * 1000);
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, timer]) : timer;
    try {
      const out = await Promise.race([fn(signal), whenAborted(signal)]);
      if (out instanceof Skip) return done({ status: "skip", detail: out.reason });
      done({ status: "pass", detail: out });
    } catch (caught) {
      // A daemon that turns out not to serve what the capabilities promised (a CRI events probe that
      // took an answer too slow for a yes): not there, rather than broken.
      if (ctx.signal?.aborted) return done({ status: "skip", detail: "interrupted" });
      if (caught instanceof UnsupportedError && !timer.aborted) {
        return done({ status: "skip", detail: `not served by this daemon: ${caught.message}` });
      }
      const err =
        timer.aborted && !ctx.signal?.aborted
          ? new TimeoutError(`${name}: no result within ${ctx.timeout} s`, { operation: name, cause: caught })
          : caught;
      const diagnosis = diagnose(err, {
        backend: b.backend,
        check: name,
        endpoint: b.endpoint,
        timeoutSeconds: ctx.timeout,
      });
      done({ status: "fail", problem: problemOf(err, diagnosis) });
    }
  };

  let sleeper: string | undefined;
  const token = randomBytes(4).toString("hex");
  try {
    await check("version", [], async (signal) => {
      const i = await rt.info({ signal });
      return `${i.name} ${i.version}${i.apiVersion ? ` (API ${i.apiVersion})` : ""}`;
    });
    await check("list", ["version"], async (signal) => {
      const found = await rt.list({ labels: ctx.labels, all: true, signal });
      if (found.length !== 0)
        throw new Error(`a new label matched ${found.length} containers, expected none`);
      return "filtered by label";
    });
    await check("pull", ["version"], async (signal) => {
      await rt.pull(ctx.image, { signal });
      return ctx.image;
    });
    await check("run", ["pull"], async (signal) => {
      const res = await rt.run(spec(["echo", `run-${token}`]), { pull: false, signal });
      const out = text(res.stdout).trim();
      if (res.exitCode !== 0 || out !== `run-${token}`) {
        throw new Error(`expected exit 0 and "run-${token}", got exit ${res.exitCode} and "${out}"`);
      }
      return "exit 0, output as expected";
    });
    await check("exec", ["pull"], async (signal) => {
      sleeper = await rt.create(spec(["sh", "-c", `echo logs-${token}; exec sleep 300`]), { signal });
      await rt.start(sleeper, { signal });
      const res = await rt.exec(sleeper, ["echo", `exec-${token}`], { signal });
      const out = text(res.stdout).trim();
      if (res.exitCode !== 0 || out !== `exec-${token}`) {
        throw new Error(`expected exit 0 and "exec-${token}", got exit ${res.exitCode} and "${out}"`);
      }
      return "exit 0, output as expected";
    });
    await check("logs", ["exec"], async (signal) => {
      if (!sleeper) return new Skip("no container");
      let seen = "";
      for await (const entry of rt.logs(sleeper, { follow: true, signal })) {
        seen += text(entry.data);
        if (seen.includes(`logs-${token}`)) return "the container's output, followed";
      }
      throw new Error(`the log ended without the line the container printed (got "${seen.trim()}")`);
    });
    await check("events", ["pull"], async (signal) => {
      if (!rt.capabilities.events) return new Skip("not supported by this backend (capabilities.events)");
      return await seeEvent(rt, spec, signal);
    });
    await check("stop", ["exec"], async (signal) => {
      if (!sleeper) return new Skip("no container");
      await rt.stop(sleeper, { graceSeconds: 1, signal });
      const state = (await rt.inspect(sleeper, { signal })).state;
      if (state === "running") throw new Error("the container still runs after stop");
      return `state ${state}`;
    });
    await check("remove", ["version"], async (signal) => {
      const removed = await sweep(rt, ctx.labels, signal);
      const left = await rt.list({ labels: ctx.labels, all: true, signal });
      if (left.length > 0) throw new Error(`${left.length} labelled containers left after removing them`);
      return `${removed} removed, none left`;
    });
  } finally {
    // Whatever happened above (a failure, the caller's abort), nothing labelled stays behind.
    await sweep(rt, ctx.labels, AbortSignal.timeout(Math.max(ctx.timeout, 30) * 1000)).catch(() => 0);
  }
  b.ok = !b.checks.some((c) => c.status === "fail");
  return b;
}

/** Starts labelled containers until the event stream reports one of them. */
async function seeEvent(
  rt: Runtime,
  spec: (command: string[], extra?: Record<string, string>) => ContainerSpec,
  signal: AbortSignal,
): Promise<string> {
  const mine = { "berth.doctor.events": randomBytes(4).toString("hex") };
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  let ended = false;
  const first = (async (): Promise<RuntimeEvent | undefined> => {
    for await (const e of rt.events({ labels: mine, signal: both })) return e;
    ended = true;
    return undefined;
  })();
  first.catch(() => {});
  try {
    // A subscription starts asynchronously: keep starting containers until one is seen.
    for (let i = 0; i < 20 && !signal.aborted; i++) {
      const id = await rt.create(spec(["true"], mine), { signal });
      await rt.start(id, { signal });
      const seen = await Promise.race([first, sleep(500).then(() => undefined)]);
      if (seen) return `${seen.type} ${seen.action}`;
      if (ended) throw new Error("the event stream ended without an event");
    }
    throw new Error("no event for the containers the doctor started");
  } finally {
    stop.abort();
  }
}

function unreachable(attempt: ConnectAttempt, timeout: number): DoctorBackend {
  const diagnosis = diagnose(attempt.error, {
    backend: attempt.backend,
    check: "version",
    endpoint: attempt.endpoint,
    timeoutSeconds: timeout,
  });
  return {
    backend: attempt.backend,
    endpoint: attempt.endpoint,
    source: attempt.source,
    reachable: false,
    ok: false,
    checks: DOCTOR_CHECKS.map((name) =>
      name === "version"
        ? { name, status: "fail", durationMs: 0, problem: problemOf(attempt.error, diagnosis) }
        : { name, status: "skip", durationMs: 0, detail: "not reachable" },
    ),
  };
}

/** The endpoints the environment configures (DOCKER_HOST...), as "backend endpoint" keys. */
async function configuredEndpoints(env: EnvMap): Promise<Set<string>> {
  const named = await Promise.all(providers.map((p) => p.fromEnv(env).catch(() => [])));
  return new Set(named.flat().map((c) => `${c.backend} ${c.endpoint}`));
}

/**
 * Checks every runtime this machine can reach, as `npx berth-sdk doctor` does: finds them with
 * `discover()` (DOCKER_HOST or the Docker context, PODMAN_HOST / CONTAINER_HOST, CONTAINERD_ADDRESS,
 * CONTAINER_RUNTIME_ENDPOINT, then the default sockets), then on each, in parallel: version, list, pull of
 * `image`, run, exec, logs, events (when the backend has them), stop and remove. Every failure comes with
 * its cause and fix ({@link diagnose}). Containers it creates are labelled `berth.doctor=<run id>` and
 * removed before it returns, also when `signal` fires. Never throws for a runtime's failure: see
 * `report.ok`.
 */
export async function doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const started = new Date();
  const t0 = performance.now();
  if ((options as { timeout?: unknown }).timeout !== undefined) {
    // Renamed in 0.3 (the name says the unit): refused rather than ignored.
    throw new ValidationError("doctor: options.timeout is now options.timeoutSeconds", {
      operation: "doctor",
    });
  }
  const timeout = options.timeoutSeconds ?? 30;
  if (!(Number.isFinite(timeout) && timeout > 0))
    throw new RangeError("timeoutSeconds must be a positive number of seconds");
  const image = options.image ?? DEFAULT_DOCTOR_IMAGE;
  const label = { key: DOCTOR_LABEL, value: randomBytes(4).toString("hex") };
  const found = await discover({
    probeTimeout: timeout * 1000,
    ...(options.env ? { env: options.env } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // A default socket that does not exist is no failure; a configured endpoint that does not answer is.
  const configured = await configuredEndpoints(options.env ?? process.env);
  const probed: DoctorProbe[] = [
    ...found.runtimes.map(({ runtime, candidate }) => ({
      backend: runtime.backend,
      endpoint: candidate.endpoint,
      source: candidate.source,
      outcome: "answered" as const,
    })),
    ...found.attempts.map((a) => {
      const absent =
        !configured.has(`${a.backend} ${a.endpoint}`) &&
        diagnose(a.error, { backend: a.backend, check: "version", endpoint: a.endpoint }).kind ===
          "socket-missing";
      return {
        backend: a.backend,
        endpoint: a.endpoint,
        source: a.source,
        outcome: absent ? ("absent" as const) : ("failed" as const),
        message: a.error.message,
      };
    }),
  ];
  const ctx: RunContext = {
    image,
    timeout,
    labels: { [label.key]: label.value },
    signal: options.signal,
    onCheck: options.onCheck,
  };
  let checked: DoctorBackend[];
  try {
    checked = await Promise.all(found.runtimes.map((r) => checkBackend(r, ctx)));
  } finally {
    await Promise.all(found.runtimes.map((r) => r.runtime.close().catch(() => {})));
  }
  const failing = found.attempts
    .filter((a) =>
      probed.some((p) => p.endpoint === a.endpoint && p.backend === a.backend && p.outcome === "failed"),
    )
    .map((a) => unreachable(a, timeout));
  const order = ["docker", "podman", "containerd", "cri"];
  const rank = (b: DoctorBackend) => (order.includes(b.backend) ? order.indexOf(b.backend) : order.length);
  const backends = [...checked, ...failing].sort((x, y) => rank(x) - rank(y));
  return {
    schemaVersion: 1,
    version: berthVersion(),
    ok: checked.length > 0 && backends.every((b) => b.ok),
    aborted: options.signal?.aborted ?? false,
    image,
    label,
    startedAt: started.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    backends,
    probed,
  };
}
