// Ports a client can connect to, and readiness: Runtime.endpoint() and Runtime.waitFor() written once for
// every backend, on top of the Runtime's own inspect(), logs() and exec(). The probes run here, in the
// client, so they work the same on every backend. What a container writes is its own: lines are read in
// bounded pieces, and what a probe connects to answers within a bounded time or counts as not ready.

import { request } from "node:http";
import { connect, isIP } from "node:net";
import { checkEndpointArgs, checkWaitForArgs } from "../call-args.js";
import {
  AbortedError,
  BerthError,
  ConflictError,
  ContainerExitedError,
  NotFoundError,
  TimeoutError,
} from "../errors.js";
import type {
  CallOptions,
  ContainerInfo,
  Endpoint,
  ReadinessProbe,
  Runtime,
  WaitForOptions,
} from "../runtime.js";
import { deadline, sleep } from "./abort.js";
import type { AdapterErrors } from "./errors.js";

/** Default time waitFor() waits, in ms. */
export const DEFAULT_WAIT_FOR_TIMEOUT_MS = 60_000;
/** Default pause between two tries of a polled probe, in ms. */
export const DEFAULT_PROBE_INTERVAL_MS = 250;
/** The longest one try of a port or http probe may take, in ms. */
const ATTEMPT_MS = 2_000;
/** The longest one exec probe may run, in ms. */
const EXEC_ATTEMPT_MS = 10_000;
/** How long a fresh TCP connection must stay open (or answer) to count as a listener, in ms. */
const SETTLE_MS = 150;
/** The longest log line a log probe looks at: a longer one is matched on its first this many bytes. */
const MAX_LINE_BYTES = 64 * 1024;
/** What ContainerExitedError keeps of the output: lines, characters per line, bytes read in all. */
const LAST_LINES = 20;
const LAST_LINE_CHARS = 1_000;
const LAST_BYTES = 64 * 1024;

/**
 * Where a client on this machine reaches `containerPort`/`protocol` of the container `info` describes:
 * loopback for a port bound on every address (IPv4 preferred), else the address it is bound to.
 */
export function endpointOf(
  errors: AdapterErrors,
  info: ContainerInfo,
  containerPort: number,
  protocol: "tcp" | "udp" = "tcp",
): Endpoint {
  if (info.state !== "running") {
    throw errors.error(ConflictError, "endpoint", `container ${info.id} is not running (${info.state})`);
  }
  // The host address is the daemon's word: only an IP address (or none, for every address) is dialled.
  const bound = info.ports.filter(
    (p) =>
      p.containerPort === containerPort &&
      p.protocol === protocol &&
      (p.hostIp === "" || isIP(p.hostIp) !== 0),
  );
  const chosen = bound.find((p) => !p.hostIp.includes(":")) ?? bound[0];
  if (!chosen) {
    throw errors.error(
      NotFoundError,
      "endpoint",
      `container ${info.id} publishes no port ${containerPort}/${protocol}`,
    );
  }
  const any = chosen.hostIp === "" || chosen.hostIp === "0.0.0.0" || chosen.hostIp === "::";
  const host = any ? (chosen.hostIp === "::" ? "::1" : "127.0.0.1") : chosen.hostIp;
  return { host, port: chosen.hostPort };
}

/** Runtime.endpoint() on `rt`: the arguments checked, the capability asked, the container inspected. */
export async function endpointFor(
  rt: Runtime,
  errors: AdapterErrors,
  id: unknown,
  containerPort: unknown,
  options: unknown,
): Promise<Endpoint> {
  const [cid, port, opts] = checkEndpointArgs(errors.at("endpoint"), id, containerPort, options);
  if (!rt.capabilities.ports)
    throw errors.unsupported("endpoint", "this backend publishes no container ports");
  return endpointOf(errors, await rt.inspect(cid, signalOf(opts)), port, opts.protocol);
}

const signalOf = (o: CallOptions): CallOptions => (o.signal ? { signal: o.signal } : {});

/** What a probe is, for messages. */
function describe(probe: ReadinessProbe): string {
  if ("log" in probe)
    return `log line ${probe.log instanceof RegExp ? String(probe.log) : JSON.stringify(probe.log)}`;
  if ("port" in probe) return `port ${probe.port}`;
  if ("http" in probe) return `http GET ${probe.http.path ?? "/"} on port ${probe.http.port}`;
  return `exec ${JSON.stringify(probe.exec)}`;
}

/** Runtime.waitFor() on `rt`; see the Runtime interface. */
export async function waitForReady(
  rt: Runtime,
  errors: AdapterErrors,
  id: unknown,
  probe: unknown,
  options: unknown,
): Promise<void> {
  const [cid, p, opts] = checkWaitForArgs(errors.at("waitFor"), id, probe, options);
  if (("port" in p || "http" in p) && !rt.capabilities.ports) {
    throw errors.unsupported(
      "waitFor",
      `a ${"port" in p ? "port" : "http"} probe needs published ports, which this backend has not`,
    );
  }
  const timeoutMs = opts.timeout ?? DEFAULT_WAIT_FOR_TIMEOUT_MS;
  const limit = deadline(opts.signal, timeoutMs);
  const state = { last: "not tried yet" };
  try {
    await new Waiter(rt, errors, cid, p, opts, limit.signal, state).run();
  } catch (err) {
    if (err instanceof ContainerExitedError) throw err;
    if (limit.expired) {
      throw errors.error(
        TimeoutError,
        "waitFor",
        `container ${cid} not ready after ${timeoutMs} ms (${describe(p)}: ${state.last})`,
        { cause: err },
      );
    }
    if (opts.signal?.aborted && !(err instanceof AbortedError))
      throw errors.aborted("waitFor", opts.signal, err);
    throw err;
  } finally {
    limit.dispose();
  }
}

/** One wait: the container watched, the probe tried until it succeeds. */
class Waiter {
  constructor(
    readonly rt: Runtime,
    readonly errors: AdapterErrors,
    readonly id: string,
    readonly probe: ReadinessProbe,
    readonly options: WaitForOptions,
    readonly signal: AbortSignal | undefined,
    readonly state: { last: string },
  ) {}

  get #call(): CallOptions {
    return this.signal ? { signal: this.signal } : {};
  }

  async run(): Promise<void> {
    const interval = this.options.interval ?? DEFAULT_PROBE_INTERVAL_MS;
    for (;;) {
      const info = await this.rt.inspect(this.id, this.#call);
      if (info.state === "exited") throw await this.#exited(info);
      if (info.state === "running") {
        const reason = "log" in this.probe ? await this.#followLog(this.probe) : await this.#try(info);
        if (reason === undefined) return;
        this.state.last = reason;
      } else {
        this.state.last = `the container is ${info.state}`;
      }
      await sleep(interval, this.signal, () => this.errors.aborted("waitFor", this.signal));
    }
  }

  /** One try of a polled probe: undefined when it succeeded, else why not. */
  async #try(info: ContainerInfo): Promise<string | undefined> {
    const probe = this.probe;
    if ("exec" in probe) {
      try {
        const res = await this.rt.exec(this.id, probe.exec, { ...this.#call, timeout: EXEC_ATTEMPT_MS });
        return res.exitCode === 0 ? undefined : `exited ${res.exitCode}`;
      } catch (err) {
        if (err instanceof TimeoutError && !this.signal?.aborted)
          return `did not finish in ${EXEC_ATTEMPT_MS} ms`;
        throw err;
      }
    }
    const port = "port" in probe ? probe.port : "http" in probe ? probe.http.port : 0;
    let target: Endpoint;
    try {
      target = endpointOf(this.errors, info, port, "tcp");
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      return err instanceof BerthError ? err.message : String(err);
    }
    return "http" in probe ? httpTry(target, probe.http, this.signal) : tcpTry(target, this.signal);
  }

  /**
   * Follows the output until a line matches: undefined then; when the output ends first, why (the
   * container is then inspected again by run()).
   */
  async #followLog(probe: {
    log: string | RegExp;
    stream?: "stdout" | "stderr";
  }): Promise<string | undefined> {
    const match = (line: string) =>
      typeof probe.log === "string" ? line.includes(probe.log) : probe.log.test(line);
    const partial = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const size = { stdout: 0, stderr: 0 };
    const lineOf = (parts: Buffer[]) => Buffer.concat(parts).subarray(0, MAX_LINE_BYTES).toString("utf8");
    for await (const entry of this.rt.logs(this.id, { ...this.#call, follow: true })) {
      if (probe.stream && entry.stream !== probe.stream) continue;
      const s = entry.stream;
      let data = Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
      for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10)) {
        if (size[s] < MAX_LINE_BYTES) partial[s].push(data.subarray(0, nl));
        if (match(lineOf(partial[s]))) return undefined;
        partial[s] = [];
        size[s] = 0;
        data = data.subarray(nl + 1);
      }
      if (data.length > 0 && size[s] < MAX_LINE_BYTES) {
        partial[s].push(Buffer.from(data));
        size[s] += data.length;
      }
    }
    for (const s of ["stdout", "stderr"] as const)
      if (partial[s].length && match(lineOf(partial[s]))) return undefined;
    return "the output ended without a matching line";
  }

  /** The ContainerExitedError of a container found exited: its code and last lines. */
  async #exited(info: ContainerInfo): Promise<ContainerExitedError> {
    const exitCode = info.exitCode ?? (await this.rt.wait(this.id, this.#call)).exitCode;
    const lastLines = await lastLinesOf(this.rt, this.id, this.#call);
    return new ContainerExitedError(
      `waitFor: container ${this.id} exited with code ${exitCode} before it was ready (${describe(this.probe)})`,
      exitCode,
      lastLines,
      { operation: "waitFor", backend: this.errors.backend },
    );
  }
}

/** The last lines of a container's output (bounded in count, length and bytes read); none if unreadable. */
async function lastLinesOf(rt: Runtime, id: string, call: CallOptions): Promise<string[]> {
  const chunks: Buffer[] = [];
  let read = 0;
  try {
    for await (const e of rt.logs(id, { ...call, tail: LAST_LINES })) {
      chunks.push(Buffer.from(e.data));
      read += e.data.byteLength;
      if (read >= LAST_BYTES) break;
    }
  } catch {
    // The output is a courtesy of the error: a backend that cannot give it leaves the lines out.
  }
  const lines = Buffer.concat(chunks).toString("utf8").split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines
    .slice(-LAST_LINES)
    .map((l) => (l.length > LAST_LINE_CHARS ? `${l.slice(0, LAST_LINE_CHARS)}...` : l));
}

/**
 * One TCP try: undefined when something listens, else why not. A connection counts when the far end
 * keeps it open for a moment or sends something; one closed at once is a proxy with nothing behind it
 * (Docker's userland proxy accepts on the host port before the container listens).
 */
function tcpTry(target: Endpoint, signal: AbortSignal | undefined): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.host, port: target.port, ...(signal ? { signal } : {}) });
    let settle: NodeJS.Timeout | undefined;
    const done = (reason: string | undefined) => {
      clearTimeout(settle);
      clearTimeout(give);
      socket.destroy();
      resolve(reason);
    };
    const give = setTimeout(() => done(`no connection in ${ATTEMPT_MS} ms`), ATTEMPT_MS);
    socket.once("connect", () => {
      settle = setTimeout(() => done(undefined), SETTLE_MS);
    });
    socket.once("data", () => done(undefined));
    socket.once("end", () => done("the connection was closed at once"));
    socket.once("close", () => done("the connection was closed at once"));
    socket.once("error", (err) => done(err.message));
  });
}

/** One HTTP try: undefined when the answer's status is the one expected (default any 2xx), else why not. */
function httpTry(
  target: Endpoint,
  probe: { path?: string; status?: number },
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (reason: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(give);
      req.destroy();
      resolve(reason);
    };
    const req = request(
      {
        host: target.host,
        port: target.port,
        path: probe.path ?? "/",
        method: "GET",
        headers: { connection: "close" },
        agent: false,
        ...(signal ? { signal } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.destroy();
        const ok = probe.status === undefined ? status >= 200 && status < 300 : status === probe.status;
        done(ok ? undefined : `HTTP ${status}`);
      },
    );
    const give = setTimeout(() => done(`no answer in ${ATTEMPT_MS} ms`), ATTEMPT_MS);
    req.once("error", (err) => done(err.message));
    req.end();
  });
}
