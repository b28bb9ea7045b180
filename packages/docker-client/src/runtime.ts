// The runtime-core Runtime over the Docker Engine API (Docker, and Podman's compatible API).
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type * as core from "@berth/runtime-core";
import {
  AbortedError,
  envList,
  NotFoundError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from "@berth/runtime-core";
import {
  AdapterBase,
  type AdapterErrors,
  adapterErrors,
  capabilitiesWithout,
  check,
  type Disposable,
  onAbort,
  runContainer,
  signalOnly,
} from "@berth/runtime-core/internal";
import { num, obj, objectOf, objectsOf, str } from "./answer.js";
import type { DockerClient } from "./client.js";
import {
  createBody,
  eventOf,
  infoOf,
  labelFilter,
  logEntry,
  progressOf,
  publicEntry,
  statsOf,
  summaryToInfo,
  toInfo,
} from "./runtime-map.js";
import { execRun } from "./verbs/exec.js";
import { pullProgress } from "./verbs/pull.js";

type Call = { signal?: AbortSignal | undefined };
const opt = signalOnly;

/** How long create() keeps looking for a container it got no answer for (see #removeIfCreatedLate). */
const LATE_CREATE_WINDOW_MS = 120_000;

/** An error after which the daemon may still carry out the request: it got it, the answer never came. */
const unanswered = (err: unknown) =>
  err instanceof TimeoutError ||
  err instanceof AbortedError ||
  err instanceof UnavailableError ||
  err instanceof ProtocolError;

export class DockerRuntime extends AdapterBase implements core.Runtime {
  readonly capabilities: core.Capabilities = capabilitiesWithout();

  /** Late-create sweeps still running (see #removeIfCreatedLate); close() ends them. */
  readonly #sweeps = new Set<Promise<void>>();
  #closing: AbortController | undefined;

  constructor(
    /** The Engine API client the adapter calls (usable directly for what the Runtime does not cover). */
    readonly docker: DockerClient,
    readonly backend: "docker" | "podman" = docker.backend === "podman" ? "podman" : "docker",
  ) {
    const errors = adapterErrors(backend);
    super(errors);
    this.#errors = errors;
  }

  /** Errors this adapter makes, stamped with its backend. */
  readonly #errors: AdapterErrors;

  /** Where a call's arguments go, for their ValidationError. */
  #at(operation: string) {
    return this.#errors.at(operation);
  }

  async info(options?: Call): Promise<core.RuntimeInfo> {
    options = check.call(this.#at("info"), options);
    const v = objectOf(await this.docker.system.version(undefined, opt(options)), "system.version");
    return infoOf(v, this.backend);
  }

  async pull(image: string, options: core.PullOptions = {}): Promise<void> {
    [image, options] = check.pull(this.#at("pull"), image, options);
    for await (const m of pullProgress(this.docker, image, {
      ...opt(options),
      ...(options.auth ? { auth: options.auth } : {}),
      ...(options.platform ? { platform: options.platform } : {}),
    })) {
      options.onProgress?.(progressOf(objectOf(m, "images.pull")));
    }
  }

  async create(spec: core.ContainerSpec, options?: Call): Promise<string> {
    [spec, options] = check.create(this.#at("create"), spec, options);
    // A name of our own unless the caller gave one: if create gets no answer (a timeout, a dropped
    // connection), the daemon may still create the container, and the name is how it is found.
    const name = spec.name ?? `berth-${randomBytes(6).toString("hex")}`;
    const ownName = spec.name === undefined ? name : undefined;
    const created = await this.#createUndoingAbort(options.signal, ownName, () =>
      this.docker.containers.create({
        name,
        body: createBody(spec),
      }),
    );
    const id = str(objectOf(created, "containers.create").Id);
    if (!id) throw this.#errors.error(ProtocolError, "containers.create", "the daemon's answer has no Id");
    return id;
  }

  async start(id: string, options?: Call): Promise<void> {
    [id, options] = check.id(this.#at("start"), id, options);
    await this.docker.containers.start({ id }, opt(options));
  }

  async inspect(id: string, options?: Call): Promise<core.ContainerInfo> {
    [id, options] = check.id(this.#at("inspect"), id, options);
    return toInfo(objectOf(await this.docker.containers.inspect({ id }, opt(options)), "containers.inspect"));
  }

  async list(
    options: Call & { labels?: Record<string, string>; all?: boolean } = {},
  ): Promise<core.ContainerInfo[]> {
    options = check.list(this.#at("list"), options);
    const labels = labelFilter(options.labels);
    const list = await this.docker.containers.list(
      { all: options.all ?? false, ...(labels.length ? { filters: { label: labels } } : {}) },
      opt(options),
    );
    return objectsOf(list, "containers.list").map(summaryToInfo);
  }

  async wait(id: string, options?: Call): Promise<core.ExitStatus> {
    [id, options] = check.id(this.#at("wait"), id, options);
    // The answer comes when the container exits, however long that takes: no timeout (0), only the signal.
    const res = await this.docker.containers.wait({ id }, { ...opt(options), timeout: 0 });
    const exitCode = num(objectOf(res, "containers.wait").StatusCode);
    if (exitCode === undefined) {
      throw this.#errors.error(ProtocolError, "containers.wait", "the daemon's answer has no StatusCode");
    }
    return { exitCode };
  }

  async *logs(id: string, options: core.LogsOptions = {}): AsyncIterable<core.LogEntry> {
    [id, options] = check.logs(this.#at("logs"), id, options);
    const follow = options.follow ?? false;
    /** The log as it is now, with timestamps. */
    const read = (since: number | undefined, tail: number | undefined) =>
      this.docker.containers.logs(
        {
          id,
          stdout: true,
          stderr: true,
          follow: false,
          timestamps: true,
          ...(since !== undefined ? { since } : {}),
          ...(tail !== undefined ? { tail: String(tail) } : {}),
        },
        opt(options),
      );
    const since = options.since ? Math.floor(options.since.getTime() / 1000) : undefined;
    // Following, timestamps are always asked for: they say where the re-read at the end starts (below).
    const stream = await this.docker.containers.logs(
      {
        id,
        stdout: true,
        stderr: true,
        follow,
        timestamps: follow || (options.timestamps ?? false),
        ...(since !== undefined ? { since } : {}),
        ...(options.tail !== undefined ? { tail: String(options.tail) } : {}),
      },
      opt(options),
    );
    /** The newest timestamp seen, and how many entries carried it. */
    let last: { key: string; count: number } | undefined;
    for await (const frame of stream) {
      const entry = logEntry(frame, follow || (options.timestamps ?? false));
      if (!entry) continue;
      if (follow) {
        const key = entry.key;
        if (key !== undefined) last = last?.key === key ? { key, count: last.count + 1 } : { key, count: 1 };
      }
      yield publicEntry(entry, options.timestamps ?? false);
    }
    if (!follow) return;
    // Docker ends a follow when the container stops, and under load it may end it before the last lines
    // are sent (1 or 2 of 60 lines lost by ~15% of 200 concurrent followers on a 2-core host, with curl
    // as well). What was logged after the last entry seen is read once more, without following.
    let rest: Awaited<ReturnType<typeof read>>;
    try {
      rest = last
        ? await read(Number(last.key.slice(0, last.key.indexOf("."))), undefined)
        : await read(since, options.tail);
    } catch (err) {
      if (err instanceof NotFoundError) return; // removed meanwhile: what was seen is all there is
      throw err;
    }
    let skip = last?.count ?? 0;
    for await (const frame of rest) {
      const entry = logEntry(frame, true);
      if (!entry) continue;
      if (last && entry.key !== undefined) {
        if (entry.key < last.key) continue;
        if (entry.key === last.key && skip > 0) {
          skip--;
          continue;
        }
      }
      yield publicEntry(entry, options.timestamps ?? false);
    }
  }

  async exec(id: string, command: string[], options: core.ExecOptions = {}): Promise<core.ExecResult> {
    [id, command, options] = check.exec(this.#at("exec"), id, command, options);
    return execRun(this.docker, id, command, {
      ...opt(options),
      ...(options.env ? { env: envList(options.env) } : {}),
      ...(options.workdir ? { workdir: options.workdir } : {}),
      ...(options.user ? { user: options.user } : {}),
      ...(options.tty ? { tty: true } : {}),
      ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    });
  }

  async stop(id: string, options: core.StopOptions = {}): Promise<void> {
    [id, options] = check.stop(this.#at("stop"), id, options);
    const grace = options.graceSeconds ?? 10;
    // The daemon answers once the grace is over and the container is gone: the call's deadline waits
    // the grace out on top of the client's own (none stays none).
    const timeout = this.docker.timeout && this.docker.timeout + grace * 1000;
    await this.docker.containers.stop(
      { id, t: grace, ...(options.signalName ? { signal: options.signalName } : {}) },
      { ...opt(options), timeout },
    );
  }

  async kill(id: string, signalName = "SIGKILL", options?: Call): Promise<void> {
    [id, signalName, options] = check.kill(this.#at("kill"), id, signalName, options);
    await this.docker.containers.kill({ id, signal: signalName }, opt(options));
  }

  async remove(id: string, options: Call & { force?: boolean } = {}): Promise<void> {
    [id, options] = check.remove(this.#at("remove"), id, options);
    await this.docker.containers.remove({ id, force: options.force ?? false, v: true }, opt(options));
  }

  async pause(id: string, options?: Call): Promise<void> {
    [id, options] = check.id(this.#at("pause"), id, options);
    await this.docker.containers.pause({ id }, opt(options));
  }

  async unpause(id: string, options?: Call): Promise<void> {
    [id, options] = check.id(this.#at("unpause"), id, options);
    await this.docker.containers.unpause({ id }, opt(options));
  }

  async stats(id: string, options?: Call): Promise<core.ContainerStats> {
    [id, options] = check.id(this.#at("stats"), id, options);
    for await (const sample of await this.docker.containers.stats({ id, stream: false }, opt(options))) {
      return statsOf(objectOf(sample, "containers.stats"));
    }
    throw this.#errors.error(NotFoundError, "containers.stats", `no sample for ${id}`);
  }

  async *events(options: Call & { labels?: Record<string, string> } = {}): AsyncIterable<core.RuntimeEvent> {
    options = check.events(this.#at("events"), options);
    const labels = labelFilter(options.labels);
    const stream = await this.docker.system.events(
      { filters: { type: ["container"], ...(labels.length ? { label: labels } : {}) } },
      opt(options),
    );
    for await (const event of stream) {
      yield eventOf(objectOf(event, "system.events"));
    }
  }

  async run(spec: core.ContainerSpec, options: core.RunOptions = {}): Promise<core.RunResult> {
    [spec, options] = check.run(this.#at("run"), spec, options);
    const call = signalOnly(options);
    return runContainer(this.#errors, options, {
      ensureImage: async () => {
        try {
          await this.docker.images.inspect({ name: spec.image }, call);
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
          await this.pull(spec.image, options);
        }
      },
      // create() names the container, and removes it should the daemon create it after giving no answer.
      create: () => this.create(spec, options),
      execute: async (id, output) => {
        // Attached before start, so no output is missed; attach carries the raw bytes (the logs of
        // Docker's json-file driver would turn invalid UTF-8 into U+FFFD). Docker and Podman both hook
        // up to the container's output before they answer, so the log is not replayed (logs: true):
        // output written while a replay runs came twice on Docker, and Podman 4 frames each replayed
        // line one byte short, which breaks the stream (both seen under load).
        const attached = await this.docker.containers.attach(
          { id, stream: true, stdout: true, stderr: true, logs: false },
          call,
        );
        await this.start(id, options);
        await output.drain(attached);
        return (await this.wait(id, options)).exitCode;
      },
      remove: (id) => this.remove(id, { force: true }),
      discard: (id) => this.#removeCreated(id),
    });
  }

  /**
   * containers.create, not cancelled in flight: once the daemon has the request it may carry it out
   * whatever the client does (a container created after the caller gave up was left behind, named or
   * not). An abort rejects at once with AbortedError; the container, when the daemon has made it, is
   * removed in the background (close() waits for that). A create with no answer at all (a timeout, a
   * dropped connection) is looked for by `ownName`, the name create() gave it, if any.
   */
  async #createUndoingAbort(
    signal: AbortSignal | undefined,
    ownName: string | undefined,
    request: () => Promise<unknown>,
  ): Promise<unknown> {
    const created = request().catch((err: unknown) => {
      if (ownName !== undefined && unanswered(err)) this.#removeIfCreatedLate(ownName);
      throw err;
    });
    if (!signal) return created;
    let listening: Disposable | undefined;
    const abort = new Promise<never>((_, reject) => {
      listening = onAbort(signal, () => reject(this.#errors.aborted("containers.create", signal)));
    });
    try {
      return await Promise.race([created, abort]);
    } catch (err) {
      if (signal.aborted) {
        const undo = created.then(
          (answer) => {
            const id = str(obj(answer)?.Id);
            if (id) return this.docker.containers.remove({ id, force: true, v: true }).then(() => {});
          },
          () => {},
        );
        const tracked = undo.catch(() => {});
        this.#sweeps.add(tracked);
        void tracked.finally(() => this.#sweeps.delete(tracked));
      }
      throw err;
    } finally {
      listening?.dispose();
    }
  }

  /**
   * Remove a container run() created and is giving up on. A forced remove can be refused while the
   * daemon is still busy with the container (Podman, a start the client stopped waiting for, answers
   * 409 for a moment under load), which left the container behind: try again, backing off, for about
   * 6 s, until it is gone or not found. close() waits for it too. Never throws.
   */
  #removeCreated(id: string): Promise<void> {
    const removal = (async () => {
      for (let delay = 100; ; delay *= 2) {
        try {
          await this.docker.containers.remove({ id, force: true, v: true }, { timeout: 10_000 });
          return;
        } catch (err) {
          if (err instanceof NotFoundError || delay > 3_200) return;
        }
        await sleep(delay, undefined, { ref: false });
      }
    })();
    this.#sweeps.add(removal);
    void removal.finally(() => this.#sweeps.delete(removal));
    return removal;
  }

  /**
   * After a create() that got no answer: the daemon may create the container later (a stalled
   * daemon does, once it moves again), and nobody would ever remove it. Look for it by its name, which
   * only that create() used, and remove it once it shows up: for LATE_CREATE_WINDOW_MS, or until close(),
   * which makes one last attempt. Runs in the background (the create() has already failed); never throws.
   */
  #removeIfCreatedLate(name: string): void {
    this.#closing ??= new AbortController();
    const closing = this.#closing.signal;
    const deadline = Date.now() + LATE_CREATE_WINDOW_MS;
    const sweep = (async () => {
      for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
        const last = closing.aborted || Date.now() >= deadline;
        try {
          await this.docker.containers.remove({ id: name, force: true, v: true }, { timeout: 10_000 });
          return;
        } catch {
          // Not there (yet), or the daemon still does not answer: look again, until the window ends.
          if (last) return;
        }
        await sleep(delay, undefined, { signal: closing, ref: false }).catch(() => {});
      }
    })();
    this.#sweeps.add(sweep);
    void sweep.finally(() => this.#sweeps.delete(sweep));
  }

  async close(): Promise<void> {
    this.#closing?.abort();
    await Promise.all(this.#sweeps);
    await this.docker.close();
  }
}
