// Picking a backend: BERTH_RUNTIME, then the runtimes' own environment variables, then their default
// sockets. runtime-core moves no bytes, so each client package brings a provider that names its
// candidates and opens them; the `berth` package passes all three.
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import type { EnvMap } from "./docker-config.js";
import { AbortedError, TimeoutError, UnavailableError, ValidationError } from "./errors.js";
import type { BackendName, Runtime, RuntimeInfo } from "./runtime.js";

/** One endpoint a backend could be reached at, and where that idea came from. */
export interface RuntimeCandidate {
  /** The backend it would be. */
  backend: BackendName;
  /** unix:///path, tcp://host:port, ssh://..., or a bare socket path. */
  endpoint: string;
  /** "BERTH_RUNTIME", "DOCKER_HOST", "default socket", "docker context ci"... */
  source: string;
  /** Open a Runtime on it (without talking to the daemon yet). */
  open(): Promise<Runtime>;
}

/**
 * Where one client package looks for its backends: each client's `./provider` entry exports one, and
 * connectRuntime() asks every provider it is given.
 */
export interface RuntimeProvider {
  /** The backends this provider serves ("docker" and "podman" share one). */
  readonly backends: readonly BackendName[];
  /** Candidates the environment names explicitly, most specific first. */
  fromEnv(env: EnvMap): Promise<RuntimeCandidate[]>;
  /** The usual sockets, tried when nothing is configured. */
  defaults(env: EnvMap): RuntimeCandidate[];
}

/** A candidate that was tried and not used, with why. */
export interface ConnectAttempt {
  /** The candidate's backend. */
  backend: BackendName;
  /** The candidate's endpoint. */
  endpoint: string;
  /** Where the candidate came from ("DOCKER_HOST", "default socket", ...). */
  source: string;
  /** Why it was not used. */
  error: Error;
}

/** No backend answered; `attempts` lists everything tried and why each failed. */
export class NoRuntimeError extends UnavailableError {
  protected static override readonly kind: string = "NoRuntime";
  /** @param attempts - Every candidate tried, in order, with the error it failed with. */
  constructor(
    /** Every candidate tried, in order, with the error it failed with (empty when there was none). */
    readonly attempts: ConnectAttempt[],
  ) {
    super(
      attempts.length === 0
        ? "no container runtime to try: no provider was given a candidate"
        : `no container runtime answered; tried:\n${attempts
            .map((a) => `  - ${a.backend} at ${a.endpoint} (${a.source}): ${a.error.message}`)
            .join("\n")}`,
      { operation: "connect" },
    );
  }
}

/** Options of connectRuntime() and discoverRuntimes(). */
export interface ConnectOptions {
  /** The providers to ask for candidates, in order (berth-sdk passes Docker's, containerd's and CRI's). */
  providers: readonly RuntimeProvider[];
  /** Only this backend (default: BERTH_RUNTIME, else any). */
  backend?: BackendName;
  /** The environment to read (default `process.env`). */
  env?: EnvMap;
  /** How long each candidate gets to answer info(), in ms (default 3000). */
  probeTimeout?: number;
  /** Cancels the search: it rejects with an AbortedError once the signal fires. */
  signal?: AbortSignal;
}

/** A runtime that answered, with what it said and where it was found. */
export interface ConnectedRuntime {
  /** The open Runtime; close() it when done. */
  runtime: Runtime;
  /** What its daemon answered to info(). */
  info: RuntimeInfo;
  /** The candidate it was opened from. */
  candidate: Omit<RuntimeCandidate, "open">;
}

function socketPath(endpoint: string): string | undefined {
  if (endpoint.startsWith("unix://")) return endpoint.slice("unix://".length);
  if (endpoint.startsWith("/")) return endpoint;
  return undefined;
}

/** A cheap look at a unix socket before dialing, so the error names the path and the problem. */
async function checkSocket(path: string): Promise<Error | undefined> {
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => err);
  if (st instanceof Error) {
    return st.code === "ENOENT"
      ? new UnavailableError(`socket ${path} does not exist`, { operation: "connect", cause: st })
      : new UnavailableError(`socket ${path}: ${st.message}`, { operation: "connect", cause: st });
  }
  if (!st.isSocket()) return new UnavailableError(`${path} is not a socket`, { operation: "connect" });
  const denied = await access(path, constants.R_OK | constants.W_OK).then(
    () => undefined,
    (err: Error) => err,
  );
  if (denied) {
    return new UnavailableError(`socket ${path}: permission denied (run as a user who may use it)`, {
      operation: "connect",
      cause: denied,
    });
  }
  return undefined;
}

async function probe(
  candidate: RuntimeCandidate,
  timeout: number,
  signal: AbortSignal | undefined,
): Promise<ConnectedRuntime> {
  const path = socketPath(candidate.endpoint);
  if (path) {
    const problem = await checkSocket(path);
    if (problem) throw problem;
  }
  const runtime = await candidate.open();
  const timer = AbortSignal.timeout(timeout);
  const both = signal ? AbortSignal.any([signal, timer]) : timer;
  try {
    const info = await runtime.info({ signal: both });
    const { open: _open, ...rest } = candidate;
    return { runtime, info, candidate: rest };
  } catch (err) {
    await runtime.close().catch(() => {});
    if (signal?.aborted) throw err;
    if (timer.aborted) {
      throw new TimeoutError(`no answer within ${timeout} ms`, { operation: "connect", cause: err });
    }
    throw err;
  }
}

async function candidatesOf(options: ConnectOptions, all: boolean): Promise<RuntimeCandidate[]> {
  const env = options.env ?? process.env;
  const wanted = options.backend ?? (env.BERTH_RUNTIME || undefined);
  let providers = options.providers;
  if (wanted) {
    providers = providers.filter((p) => p.backends.includes(wanted));
    if (providers.length === 0) {
      const known = options.providers.flatMap((p) => p.backends);
      throw new ValidationError(
        `unknown backend "${wanted}"${options.backend ? "" : " (from BERTH_RUNTIME)"}; known: ${known.join(", ")}`,
        { operation: "connect" },
      );
    }
  }
  const keep = (c: RuntimeCandidate) => !wanted || c.backend === wanted;
  const fromEnv = (await Promise.all(providers.map((p) => p.fromEnv(env)))).flat().filter(keep);
  // With an explicit configuration, only that is tried (a configured but dead daemon must not be
  // silently replaced by another one); without any, the default sockets.
  const defaults = all || fromEnv.length === 0 ? providers.flatMap((p) => p.defaults(env)).filter(keep) : [];
  const seen = new Set<string>();
  return [...fromEnv, ...defaults].filter((c) => {
    const key = `${c.backend} ${socketPath(c.endpoint) ?? c.endpoint}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function attemptOf(c: RuntimeCandidate, err: unknown): ConnectAttempt {
  return {
    backend: c.backend,
    endpoint: c.endpoint,
    source: c.source,
    error: err instanceof Error ? err : new Error(String(err)),
  };
}

/**
 * The first backend that answers: the one BERTH_RUNTIME (or `backend`) names, else those the
 * runtimes' environment variables configure (DOCKER_HOST, CONTAINER_HOST, CONTAINERD_ADDRESS,
 * CONTAINER_RUNTIME_ENDPOINT...), else the default sockets. Throws NoRuntimeError listing every attempt.
 */
export async function connectRuntime(options: ConnectOptions): Promise<ConnectedRuntime> {
  const attempts: ConnectAttempt[] = [];
  for (const c of await candidatesOf(options, false)) {
    if (options.signal?.aborted) throw new AbortedError("connect: aborted", { operation: "connect" });
    try {
      return await probe(c, options.probeTimeout ?? 3000, options.signal);
    } catch (err) {
      if (options.signal?.aborted)
        throw new AbortedError("connect: aborted", { operation: "connect", cause: err });
      attempts.push(attemptOf(c, err));
    }
  }
  throw new NoRuntimeError(attempts);
}

/** Every backend that answers, configured or at a default socket, probed in parallel. */
export async function discoverRuntimes(options: ConnectOptions): Promise<{
  /** Every runtime that answered, open: close each when done. */
  runtimes: ConnectedRuntime[];
  /** Every candidate that did not answer, and why. */
  attempts: ConnectAttempt[];
}> {
  const candidates = await candidatesOf(options, true);
  const results = await Promise.allSettled(
    candidates.map((c) => probe(c, options.probeTimeout ?? 3000, options.signal)),
  );
  const runtimes: ConnectedRuntime[] = [];
  const attempts: ConnectAttempt[] = [];
  results.forEach((r, i) => {
    if (r.status === "fulfilled") runtimes.push(r.value);
    else attempts.push(attemptOf(candidates[i] as RuntimeCandidate, r.reason));
  });
  return { runtimes, attempts };
}
