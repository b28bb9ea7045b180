// The arguments of every Runtime method, checked where they enter an adapter, the same way on every
// backend: a wrong type, a missing field, a string of megabytes, a NUL, a `/` in an id, a getter that
// throws, a thing posing as an AbortSignal are one ValidationError, and a signal that has already fired is
// an AbortedError, before anything reaches a daemon. Each check returns a plain copy of what it read, and
// the adapter works from that copy only: an object cannot pass the check and then answer otherwise.

import {
  MAX_ARG_LENGTH,
  MAX_LIST_LENGTH,
  readEnv,
  readId,
  readImage,
  readLabels,
  readPath,
  readSignalName,
  readUser,
} from "./arg-fields.js";
import { ArgReader, type CallSite, show } from "./arg-reader.js";
import { AbortedError } from "./errors.js";
import type {
  CallOptions,
  ContainerSpec,
  ExecOptions,
  LogsOptions,
  PullOptions,
  ReadinessProbe,
  RunOptions,
  StopOptions,
  WaitForOptions,
} from "./runtime.js";
import { readContainerSpec } from "./spec.js";

export type { CallSite } from "./arg-reader.js";

/** Longest accepted credential field (identity tokens are JWTs of a few KiB). */
const MAX_SECRET_LENGTH = 1024 * 1024;
/** The largest timeout setTimeout honours (a larger one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options of Runtime.list(). */
export type ListOptions = CallOptions & {
  /** Only containers with every one of these labels. */
  labels?: Record<string, string>;
  /** Stopped containers too (default: running ones only). */
  all?: boolean;
};
/** Options of Runtime.remove(). */
export type RemoveOptions = CallOptions & {
  /** Remove a running container too, killing it first (default false). */
  force?: boolean;
};
/** Options of Runtime.events(). */
export type EventsOptions = CallOptions & {
  /** Only events about containers with every one of these labels. */
  labels?: Record<string, string>;
};

/** The `options` argument: absent, or an object whose fields are then read once each. */
function optionsOf(r: ArgReader, value: unknown): { get(key: string): unknown } {
  const o = r.object(value, "options");
  return { get: (key) => (o ? r.field(o, key, `options.${key}`) : undefined) };
}

/** Throw what the reader found; then, if the caller's signal has already fired, AbortedError. */
function finish(r: ArgReader, signal: AbortSignal | undefined): void {
  r.finish();
  if (signal?.aborted) {
    throw new AbortedError(`${r.at.operation}: aborted before it started`, {
      operation: r.at.operation,
      ...(r.at.backend ? { backend: r.at.backend } : {}),
      cause: signal.reason,
    });
  }
}

const withSignal = (signal: AbortSignal | undefined): CallOptions => (signal ? { signal } : {});

function callOptions(r: ArgReader, options: unknown): { o: ReturnType<typeof optionsOf>; call: CallOptions } {
  const o = optionsOf(r, options);
  return { o, call: withSignal(r.signal(o.get("signal"), "options.signal")) };
}

function defined<T extends object>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as T;
}

/** `(id, options?)`: inspect, start, wait, pause, unpause, stats. */
export function checkIdCall(at: CallSite, id: unknown, options: unknown): [string, CallOptions] {
  const r = new ArgReader(at);
  const checked = readId(r, id, "id");
  const { call } = callOptions(r, options);
  finish(r, call.signal);
  return [checked as string, call];
}

/** `(options?)`: info. */
export function checkCallOptions(at: CallSite, options: unknown): CallOptions {
  const r = new ArgReader(at);
  const { call } = callOptions(r, options);
  finish(r, call.signal);
  return call;
}

/** `(spec, options?)`: create. */
export function checkCreateArgs(at: CallSite, spec: unknown, options: unknown): [ContainerSpec, CallOptions] {
  const r = new ArgReader(at);
  const checked = readContainerSpec(r, spec);
  const { call } = callOptions(r, options);
  finish(r, call.signal);
  return [checked as ContainerSpec, call];
}

function readPullOptions(
  r: ArgReader,
  options: unknown,
): { o: ReturnType<typeof optionsOf>; pull: PullOptions } {
  const { o, call } = callOptions(r, options);
  const auth = r.object(o.get("auth"), "options.auth");
  let credentials: PullOptions["auth"] | undefined;
  if (auth) {
    const field = (key: string) =>
      r.string(r.field(auth, key, `options.auth.${key}`), `options.auth.${key}`, {
        max: MAX_SECRET_LENGTH,
        nonEmpty: false,
      });
    credentials = defined({
      serverAddress: field("serverAddress") as string,
      username: field("username"),
      password: field("password"),
      identityToken: field("identityToken"),
      registryToken: field("registryToken"),
    });
  }
  const platform = r.string(o.get("platform"), "options.platform", { max: 256 });
  if (platform !== undefined && !/^[a-z0-9_.-]+\/[a-z0-9_.-]+(?:\/[a-z0-9_.-]+)?$/i.test(platform)) {
    r.problem(`options.platform ${show(platform)} is not "os/arch" or "os/arch/variant"`);
  }
  const onProgress = r.function<PullOptions["onProgress"]>(o.get("onProgress"), "options.onProgress");
  return { o, pull: defined({ ...call, auth: credentials, platform, onProgress }) };
}

/** `(image, options?)`: pull. */
export function checkPullArgs(at: CallSite, image: unknown, options: unknown): [string, PullOptions] {
  const r = new ArgReader(at);
  const checked = readImage(r, image, "image");
  const { pull } = readPullOptions(r, options);
  finish(r, pull.signal);
  return [checked as string, pull];
}

/** `(spec, options?)`: run. */
export function checkRunArgs(at: CallSite, spec: unknown, options: unknown): [ContainerSpec, RunOptions] {
  const r = new ArgReader(at);
  const checked = readContainerSpec(r, spec);
  const { o, pull } = readPullOptions(r, options);
  const run: RunOptions = defined({
    ...pull,
    remove: r.boolean(o.get("remove"), "options.remove"),
    pull: r.boolean(o.get("pull"), "options.pull"),
    onOutput: r.function<RunOptions["onOutput"]>(o.get("onOutput"), "options.onOutput"),
  });
  finish(r, run.signal);
  return [checked as ContainerSpec, run];
}

/** `(options?)`: list. */
export function checkListOptions(at: CallSite, options: unknown): ListOptions {
  const r = new ArgReader(at);
  const { o, call } = callOptions(r, options);
  const list: ListOptions = defined({
    ...call,
    labels: readLabels(r, o.get("labels"), "options.labels"),
    all: r.boolean(o.get("all"), "options.all"),
  });
  finish(r, list.signal);
  return list;
}

/** `(options?)`: events. */
export function checkEventsOptions(at: CallSite, options: unknown): EventsOptions {
  const r = new ArgReader(at);
  const { o, call } = callOptions(r, options);
  const events: EventsOptions = defined({
    ...call,
    labels: readLabels(r, o.get("labels"), "options.labels"),
  });
  finish(r, events.signal);
  return events;
}

/** `(id, options?)`: logs. */
export function checkLogsArgs(at: CallSite, id: unknown, options: unknown): [string, LogsOptions] {
  const r = new ArgReader(at);
  const checked = readId(r, id, "id");
  const { o, call } = callOptions(r, options);
  const logs: LogsOptions = defined({
    ...call,
    follow: r.boolean(o.get("follow"), "options.follow"),
    since: r.date(o.get("since"), "options.since"),
    tail: r.number(o.get("tail"), "options.tail", { min: 0, max: Number.MAX_SAFE_INTEGER }),
    timestamps: r.boolean(o.get("timestamps"), "options.timestamps"),
  });
  finish(r, logs.signal);
  return [checked as string, logs];
}

/** `(id, command, options?)`: exec. */
export function checkExecArgs(
  at: CallSite,
  id: unknown,
  command: unknown,
  options: unknown,
): [string, string[], ExecOptions] {
  const r = new ArgReader(at);
  const checked = readId(r, id, "id");
  const cmd = r.strings(command, "command", MAX_LIST_LENGTH, { max: MAX_ARG_LENGTH, nonEmpty: false });
  if (command === undefined) r.problem("command is required");
  else if (cmd?.length === 0) r.problem("command must name a program (it is empty)");
  const { o, call } = callOptions(r, options);
  const stdin = o.get("stdin");
  const stdinOk = r.read(
    "options.stdin",
    () => stdin === undefined || typeof stdin === "string" || stdin instanceof Uint8Array,
  );
  if (stdinOk && !stdinOk.value)
    r.problem(`options.stdin must be a string or a Uint8Array, got ${show(stdin)}`);
  const exec: ExecOptions = defined({
    ...call,
    env: readEnv(r, o.get("env"), "options.env"),
    workdir: readPath(r, o.get("workdir"), "options.workdir"),
    user: readUser(r, o.get("user"), "options.user"),
    tty: r.boolean(o.get("tty"), "options.tty"),
    stdin: stdinOk?.value ? (stdin as string | Uint8Array | undefined) : undefined,
    timeout: r.number(o.get("timeout"), "options.timeout", { min: 0, max: MAX_TIMER_MS, fraction: true }),
  });
  finish(r, exec.signal);
  return [checked as string, cmd as string[], exec];
}

/** `(id, options?)`: stop. */
export function checkStopArgs(at: CallSite, id: unknown, options: unknown): [string, StopOptions] {
  const r = new ArgReader(at);
  const checked = readId(r, id, "id");
  const { o, call } = callOptions(r, options);
  // Renamed in 0.3 (one unit per name, a POSIX signal is a signalName): say so rather than ignore them.
  const renamed = { timeout: "graceSeconds", stopSignal: "signalName" };
  for (const [old, now] of Object.entries(renamed)) {
    if (o.get(old) !== undefined) r.problem(`options.${old} is now options.${now}`);
  }
  const stop: StopOptions = defined({
    ...call,
    // Seconds; at most what a timer in milliseconds can wait.
    graceSeconds: r.number(o.get("graceSeconds"), "options.graceSeconds", {
      min: 0,
      max: Math.floor(MAX_TIMER_MS / 1000),
    }),
    signalName: readSignalName(r, o.get("signalName"), "options.signalName"),
  });
  finish(r, stop.signal);
  return [checked as string, stop];
}

/** `(id, signalName?, options?)`: kill. The signal defaults to SIGKILL. */
export function checkKillArgs(
  at: CallSite,
  id: unknown,
  signalName: unknown,
  options: unknown,
): [string, string, CallOptions] {
  const r = new ArgReader(at);
  const checked = readId(r, id, "id");
  const name = readSignalName(r, signalName, "signalName") ?? "SIGKILL";
  const { call } = callOptions(r, options);
  finish(r, call.signal);
  return [checked as string, name, call];
}

/** `(id, options?)`: remove. */
export function checkRemoveArgs(at: CallSite, id: unknown, options: unknown): [string, RemoveOptions] {
  const r = new ArgReader(at);
  const checked = readId(r, id, "id");
  const { o, call } = callOptions(r, options);
  const remove: RemoveOptions = defined({ ...call, force: r.boolean(o.get("force"), "options.force") });
  finish(r, remove.signal);
  return [checked as string, remove];
}

/** Options of Runtime.endpoint(). */
export type EndpointOptions = CallOptions & {
  /** Default "tcp". */
  protocol?: "tcp" | "udp";
};

/** A protocol name: "tcp" or "udp". */
function readProtocol(r: ArgReader, value: unknown, what: string): "tcp" | "udp" | undefined {
  if (value === undefined || value === "tcp" || value === "udp") return value;
  return r.problem(`${what} must be "tcp" or "udp", got ${show(value)}`);
}

/** A port number, required. */
function readPortNumber(r: ArgReader, value: unknown, what: string): number {
  const port = r.number(value, what, { min: 1, max: 65535 });
  if (value === undefined) r.problem(`${what} is required`);
  return port as number;
}

/** `(id, containerPort, options?)`: endpoint. */
export function checkEndpointArgs(
  at: CallSite,
  id: unknown,
  containerPort: unknown,
  options: unknown,
): [string, number, EndpointOptions] {
  const r = new ArgReader(at);
  const checked = readId(r, id, "id");
  const port = readPortNumber(r, containerPort, "containerPort");
  const { o, call } = callOptions(r, options);
  const out: EndpointOptions = defined({
    ...call,
    protocol: readProtocol(r, o.get("protocol"), "options.protocol"),
  });
  finish(r, out.signal);
  return [checked as string, port, out];
}

/** Longest log pattern (a string, or a RegExp's source). */
const MAX_PATTERN_LENGTH = 4096;

/** A readiness probe: exactly one of `log`, `port`, `http`, `exec`, read into a plain copy. */
function readProbe(r: ArgReader, value: unknown): ReadinessProbe | undefined {
  const o = r.object(value, "probe", false);
  if (!o) return r.problem("probe is required");
  const kinds = ["log", "port", "http", "exec"] as const;
  // Each field is read once: an object that answers differently on a second read gets no say.
  const fields = kinds
    .map((k) => [k, r.field(o, k, `probe.${k}`)] as const)
    .filter(([, v]) => v !== undefined);
  const [first] = fields;
  if (fields.length !== 1 || !first) {
    const has = fields.map(([k]) => k).join(", ") || "none";
    return r.problem(`probe must have exactly one of ${kinds.join(", ")} (it has ${has})`);
  }
  const [kind, v] = first;
  if (kind === "log") {
    const stream = r.field(o, "stream", "probe.stream");
    if (stream !== undefined && stream !== "stdout" && stream !== "stderr")
      r.problem(`probe.stream must be "stdout" or "stderr", got ${show(stream)}`);
    let log: string | RegExp | undefined;
    if (v instanceof RegExp) {
      // A copy: its lastIndex is the probe's own, and a global or sticky flag would make test() stateful.
      if (v.source.length > MAX_PATTERN_LENGTH)
        r.problem(`probe.log is longer than ${MAX_PATTERN_LENGTH} characters`);
      else log = new RegExp(v.source, v.flags.replace(/[gy]/g, ""));
    } else {
      log = r.string(v, "probe.log", { max: MAX_PATTERN_LENGTH });
    }
    return log === undefined
      ? undefined
      : defined({ log, stream: stream as "stdout" | "stderr" | undefined });
  }
  if (kind === "port") return { port: readPortNumber(r, v, "probe.port") };
  if (kind === "exec") {
    const cmd = r.strings(v, "probe.exec", MAX_LIST_LENGTH, { max: MAX_ARG_LENGTH, nonEmpty: false });
    if (cmd?.length === 0) r.problem("probe.exec must name a program (it is empty)");
    return cmd ? { exec: cmd } : r.problem("probe.exec must be a list of strings");
  }
  const http = r.object(v, "probe.http", false);
  if (!http) return r.problem("probe.http must be an object");
  const path = r.string(r.field(http, "path", "probe.http.path"), "probe.http.path", { max: MAX_ARG_LENGTH });
  if (
    path !== undefined &&
    (!path.startsWith("/") || Array.from(path).some((c) => c <= " " || c === "\u007f" || /\s/.test(c)))
  )
    r.problem(
      `probe.http.path must start with / and have no spaces or control characters, got ${show(path)}`,
    );
  return {
    http: defined({
      port: readPortNumber(r, r.field(http, "port", "probe.http.port"), "probe.http.port"),
      path,
      status: r.number(r.field(http, "status", "probe.http.status"), "probe.http.status", {
        min: 100,
        max: 599,
      }),
    }),
  };
}

/** `(id, probe, options?)`: waitFor. */
export function checkWaitForArgs(
  at: CallSite,
  id: unknown,
  probe: unknown,
  options: unknown,
): [string, ReadinessProbe, WaitForOptions] {
  const r = new ArgReader(at);
  const checked = readId(r, id, "id");
  const p = readProbe(r, probe);
  // Every way readProbe() gives nothing records a problem; this says so should one ever not.
  if (p === undefined) r.problem("probe is not a readiness probe");
  const { o, call } = callOptions(r, options);
  const out: WaitForOptions = defined({
    ...call,
    timeout: r.number(o.get("timeout"), "options.timeout", { min: 0, max: MAX_TIMER_MS, fraction: true }),
    interval: r.number(o.get("interval"), "options.interval", { min: 1, max: MAX_TIMER_MS, fraction: true }),
  });
  finish(r, out.signal);
  return [checked as string, p as ReadinessProbe, out];
}

/** Every Runtime method's argument check, by the method it guards: what an adapter imports. */
export const check = Object.freeze({
  id: checkIdCall,
  call: checkCallOptions,
  create: checkCreateArgs,
  pull: checkPullArgs,
  run: checkRunArgs,
  list: checkListOptions,
  events: checkEventsOptions,
  logs: checkLogsArgs,
  exec: checkExecArgs,
  stop: checkStopArgs,
  kill: checkKillArgs,
  remove: checkRemoveArgs,
  endpoint: checkEndpointArgs,
  waitFor: checkWaitForArgs,
});
