// The Runtime surface as a JavaScript caller could misuse it, on every backend (Docker, Podman, containerd,
// the CRI): each method called with hostile arguments (test/support/hostile-args.ts) either succeeds or
// fails with a typed berth error. Never a raw TypeError/RangeError/SyntaxError (thrown or rejected), never
// a call that does not settle, never a container (or pod) left behind.
//
// Most cases are refused at the adapters' boundary before any daemon call (runtime-core's call-args.ts);
// the few plausible ones reach the daemon: unknown ids, an image the registry lacks, and now and then a
// container really created (labelled; the test removes what a successful call returns, and anything else
// with its label is a leak).
//
// Two test files call runtimeSurfaceFuzz() with two backends each, so that the two run side by side.
// BERTH_SURFACE_FUZZ_RUNS cases per method per backend (default 100; the reliability suite asks for
// 10,000), BERTH_SURFACE_FUZZ_BACKENDS (default docker,podman,containerd,cri), BERTH_SURFACE_FUZZ_SEED,
// BERTH_SURFACE_FUZZ_PLAUSIBLE (the most plausible cases per method, default 25), and
// BERTH_SURFACE_FUZZ_VERBOSE=1 for the outcomes by class and the cases that took long.
// Prints `fuzz: runtime surface: <backend>: N methods, N cases, N untyped, N hangs, N left behind` per
// backend (scripts/reliability.mjs sums them up).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import fc from "fast-check";
import { afterAll, describe, it } from "vitest";
import { ContainerdClient, ContainerdRuntime } from "../../packages/containerd-client/src/index.js";
import { type CriClient, CriRuntime } from "../../packages/crio-client/src/index.js";
import { DockerClient, DockerRuntime } from "../../packages/docker-client/src/index.js";
import { isBerthError, type Runtime } from "../../packages/runtime-core/src/index.js";
import {
  backendFromEnv,
  removeNamespaceSoon,
  sweepCri,
  withContainerd,
  withCri,
  withDocker,
} from "../support/daemon-admin.js";
import {
  type Described,
  describe as describeCall,
  hostileCalls,
  materialize,
  RUNTIME_METHODS,
  type RuntimeMethod,
} from "../support/hostile-args.js";

const env = process.env;
const RUNS = Number(env.BERTH_SURFACE_FUZZ_RUNS ?? 100);
const SEED = Number(env.BERTH_SURFACE_FUZZ_SEED ?? Date.now() % 2 ** 31);
const BACKENDS = (env.BERTH_SURFACE_FUZZ_BACKENDS ?? "docker,podman,containerd,cri")
  .split(",")
  .filter(Boolean);
/** After its live signal is aborted, a call must settle within this. */
const SETTLE_MS = Number(env.BERTH_SURFACE_FUZZ_SETTLE_MS ?? 10_000);
/** A call without a live signal must settle within this (a run that pulls, creates, starts, waits). */
const CALL_MS = Number(env.BERTH_SURFACE_FUZZ_CALL_MS ?? 60_000);

/** Plausible cases (they reach the daemon) per method per backend: 3% of the cases, at most this many. */
const PLAUSIBLE_MAX = Number(env.BERTH_SURFACE_FUZZ_PLAUSIBLE ?? 25);

const RUN = randomBytes(4).toString("hex");
const LABEL = "berth.fuzz";
const labels = { [LABEL]: RUN };
const registry = env.BERTH_REGISTRY ?? "127.0.0.1:5000";
const image = env.BERTH_TEST_IMAGE ?? `${registry}/busybox:latest`;
const namePrefix = `berth-fuzz-${RUN}`;
const ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  s390x: "s390x",
  ppc64: "ppc64le",
};

const calls = hostileCalls({
  image,
  missingImage: `${registry}/berth-fuzz-missing:${RUN}`,
  labels,
  namePrefix,
  platform: `linux/${ARCH[process.arch] ?? process.arch}`,
  registry,
});

const cases = new Map<RuntimeMethod, Described[][]>();
/** RUNS argument lists for `method` (the same for every backend): broken ones, with the plausible ones
 *  spread evenly among them. */
function casesOf(method: RuntimeMethod): Described[][] {
  const made = cases.get(method);
  if (made) return made;
  const seed = SEED + RUNTIME_METHODS.indexOf(method);
  const max = calls[method].plausibleMax ?? PLAUSIBLE_MAX;
  const plausible = Math.min(Math.ceil(RUNS * 0.03), max, PLAUSIBLE_MAX, RUNS);
  const good = plausible ? fc.sample(calls[method].plausible, { numRuns: plausible, seed }) : [];
  const bad = RUNS > plausible ? fc.sample(calls[method].broken, { numRuns: RUNS - plausible, seed }) : [];
  const every = RUNS / Math.max(plausible, 1);
  const out: Described[][] = [];
  let [g, b] = [0, 0];
  for (let i = 0; i < RUNS; i++) {
    const wantGood = g < good.length && (i >= g * every || b >= bad.length);
    out.push((wantGood ? good[g++] : bad[b++]) as Described[]);
  }
  cases.set(method, out);
  return out;
}

interface Backend {
  name: string;
  open(): Promise<Runtime>;
  /** Containers (and pods) with the test's label or names, as "kind id". */
  leftovers(): Promise<string[]>;
  /** Remove everything of the test's. */
  cleanup(): Promise<void>;
}

function dockerBackend(name: "docker" | "podman", host: string): Backend {
  const ours = async (d: DockerClient) => {
    const byLabel = await d.containers.list({ all: true, filters: { label: [`${LABEL}=${RUN}`] } });
    const byName = await d.containers.list({ all: true, filters: { name: [namePrefix] } });
    const names = new Map([...byLabel, ...byName].map((c) => [c.Id ?? "", c.Names?.[0] ?? ""]));
    names.delete("");
    return names;
  };
  return {
    name,
    open: async () => new DockerRuntime(new DockerClient({ host, backend: name }), name),
    leftovers: () =>
      withDocker(host, name, async (d) => [...(await ours(d))].map(([id, n]) => `container ${id} (${n})`)),
    cleanup: () =>
      withDocker(host, name, async (d) => {
        for (const id of (await ours(d)).keys()) {
          await d.containers.remove({ id, force: true, v: true }).catch(() => {});
        }
      }),
  };
}

function containerdBackend(address: string): Backend {
  const namespace = `berth-fuzz-${RUN}`;
  const logDir = mkdtempSync(join(tmpdir(), "berth-fuzz-containerd-logs-"));
  return {
    name: "containerd",
    open: async () =>
      new ContainerdRuntime(new ContainerdClient({ address, namespace }), {
        logDir,
        runtime: { root: env.BERTH_RUNC_ROOT ?? "" },
      }),
    // Everything in the namespace is the test's.
    leftovers: () =>
      withContainerd(address, namespace, async (c) =>
        (await c.containers.list({})).containers.map((x) => `container ${x.id}`),
      ),
    cleanup: async () => {
      try {
        await withContainerd(address, namespace, (c) => removeNamespaceSoon(c));
      } finally {
        rmSync(logDir, { recursive: true, force: true });
      }
    },
  };
}

function criBackend(endpoint: string): Backend {
  const namespace = `berth-fuzz-${RUN}`;
  const logRoot = mkdtempSync(join(tmpdir(), "berth-fuzz-cri-logs-"));
  const ours = async (c: CriClient) => ({
    containers: await c.listContainers({ labelSelector: labels }),
    pods: (await c.listPodSandbox()).filter(
      (p) => p.labels[LABEL] === RUN || p.metadata?.namespace === namespace,
    ),
  });
  return {
    name: "cri",
    open: () => CriRuntime.connect({ endpoint, logRoot, namespace }),
    leftovers: () =>
      withCri(endpoint, async (c) => {
        const { containers, pods } = await ours(c);
        return [...containers.map((x) => `container ${x.id}`), ...pods.map((p) => `pod ${p.id}`)];
      }),
    cleanup: async () => {
      await withCri(endpoint, async (c) => {
        const { containers, pods } = await ours(c);
        await sweepCri(c, containers, pods);
      });
      rmSync(logRoot, { recursive: true, force: true });
    },
  };
}

const backendOf = (name: string): Backend | undefined =>
  backendFromEnv(
    name,
    { docker: dockerBackend, containerd: containerdBackend, cri: criBackend },
    "BERTH_SURFACE_FUZZ_BACKENDS",
  );

type Outcome =
  | { kind: "ok"; value: unknown }
  | { kind: "typed"; error: Error }
  | { kind: "untyped"; error: unknown; sync: boolean }
  | { kind: "hang"; after: number };

const HANG = Symbol("hang");
const settleWithin = <T>(p: PromiseLike<T> | T, ms: number): Promise<T | typeof HANG> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    Promise.resolve(p),
    new Promise<typeof HANG>((r) => {
      timer = setTimeout(() => r(HANG), ms);
    }),
  ]).finally(() => clearTimeout(timer));
};

/** One call: the method with the arguments described, bounded; an iterable is read for its first entry. */
async function callOnce(rt: Runtime, method: RuntimeMethod, description: Described[]): Promise<Outcome> {
  const { args, live } = materialize(description);
  const timers = live.map((l) => setTimeout(() => l.controller.abort(new Error("fuzz: deadline")), l.ms));
  const bound = live.length ? Math.max(...live.map((l) => l.ms)) + SETTLE_MS : CALL_MS;
  const t0 = performance.now();
  let result: unknown;
  try {
    result = (rt[method] as (...a: unknown[]) => unknown)(...args);
  } catch (error) {
    timers.forEach(clearTimeout);
    return isBerthError(error) ? { kind: "typed", error } : { kind: "untyped", error, sync: true };
  }
  try {
    let value: unknown;
    if (method === "logs" || method === "events") {
      const it = (result as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      value = await settleWithin(it.next(), bound);
      if (value === HANG) return { kind: "hang", after: performance.now() - t0 };
      const closed = await settleWithin(it.return?.(), bound);
      if (closed === HANG) return { kind: "hang", after: performance.now() - t0 };
    } else {
      value = await settleWithin(result as Promise<unknown>, bound);
      if (value === HANG) return { kind: "hang", after: performance.now() - t0 };
    }
    return { kind: "ok", value };
  } catch (error) {
    return isBerthError(error) ? { kind: "typed", error } : { kind: "untyped", error, sync: false };
  } finally {
    timers.forEach(clearTimeout);
  }
}

interface Finding {
  backend: string;
  method: string;
  what: string;
  count: number;
  example: string;
}

interface Tally {
  cases: number;
  untyped: number;
  hangs: number;
  leftBehind: number;
  created: number;
  typed: Map<string, number>;
  /** Cases that took over 2 ms (they reached a daemon, mostly), and their time, per method. */
  slow: Map<string, { cases: number; ms: number }>;
  seconds: number;
}

const tallies = new Map<string, Tally>();
const findings = new Map<string, Finding>();

function record(backend: string, method: string, what: string, description: Described[]): void {
  const key = `${backend} ${method} ${what}`;
  const f = findings.get(key);
  if (f) f.count++;
  else findings.set(key, { backend, method, what, count: 1, example: describeCall(description) });
}

/** What an untyped error was, in one line without the values (they may be megabytes). */
function untypedWhat(error: unknown, sync: boolean): string {
  const name = error instanceof Error ? error.constructor.name : typeof error;
  const message = error instanceof Error ? error.message : inspect(error).slice(0, 100);
  return `${sync ? "threw" : "rejected"} ${name}: ${message.replace(/\s+/g, " ").slice(0, 160)}`;
}

/** Remove what a successful call created (create's id, run's with remove: false). */
async function removeCreated(rt: Runtime, method: RuntimeMethod, value: unknown): Promise<boolean> {
  const id =
    method === "create" && typeof value === "string"
      ? value
      : method === "run" && typeof (value as { id?: unknown })?.id === "string"
        ? (value as { id: string }).id
        : undefined;
  if (id === undefined) return false;
  await rt.remove(id, { force: true }).catch((err) => {
    if (!(isBerthError(err) && err.code === "NotFound")) throw err;
  });
  return true;
}

/** The fuzz on these backends (those BERTH_SURFACE_FUZZ_BACKENDS names, and whose daemon the harness has). */
export function runtimeSurfaceFuzz(backends: string[]): void {
  for (const name of backends.filter((b) => BACKENDS.includes(b))) surfaceFuzz(name);
  afterAll(report);
}

function surfaceFuzz(name: string): void {
  const backend = backendOf(name);
  describe.skipIf(!backend)(`runtime surface fuzz: ${name}`, () => {
    const b = backend as Backend;
    const tally: Tally = {
      cases: 0,
      untyped: 0,
      hangs: 0,
      leftBehind: 0,
      created: 0,
      typed: new Map(),
      slow: new Map(),
      seconds: 0,
    };
    tallies.set(name, tally);
    let rt: Runtime;
    /** What the listing showed of the test's after each method, and after which method it first did. */
    const firstSeen = new Map<string, string>();

    it("opens", async () => {
      rt = await b.open();
    });

    for (const method of RUNTIME_METHODS) {
      const timeout = 60_000 + RUNS * 100;
      it(method, { timeout }, async () => {
        const t0 = performance.now();
        const samples = casesOf(method);
        for (const [i, description] of samples.entries()) {
          // Out of time (hangs, or a daemon gone slow): say so with what was found, rather than time out.
          if (performance.now() - t0 > timeout - 30_000) {
            record(name, method, `ran out of time after ${i} of ${RUNS} cases`, description);
            break;
          }
          const t = performance.now();
          const outcome = await callOnce(rt, method, description);
          const took = performance.now() - t;
          if (took > 2) {
            const slow = tally.slow.get(method) ?? { cases: 0, ms: 0 };
            tally.slow.set(method, { cases: slow.cases + 1, ms: slow.ms + took });
          }
          tally.cases++;
          if (outcome.kind === "untyped") {
            tally.untyped++;
            record(name, method, untypedWhat(outcome.error, outcome.sync), description);
          } else if (outcome.kind === "hang") {
            tally.hangs++;
            record(name, method, `did not settle within ${outcome.after.toFixed(0)} ms`, description);
          } else if (outcome.kind === "typed") {
            const key = `${method} ${outcome.error.constructor.name}`;
            tally.typed.set(key, (tally.typed.get(key) ?? 0) + 1);
          } else if (await removeCreated(rt, method, outcome.value)) {
            tally.created++;
          }
        }
        tally.seconds += (performance.now() - t0) / 1000;
        for (const x of await b.leftovers()) if (!firstSeen.has(x)) firstSeen.set(x, method);
        const mine = [...findings.values()].filter((f) => f.backend === name && f.method === method);
        if (mine.length) {
          throw new Error(
            `${name}.${method}: ${mine.length} kinds of failure (seed ${SEED}):\n` +
              mine.map((f) => `  ${f.count} x ${f.what}\n      e.g. ${f.example.slice(0, 400)}`).join("\n"),
          );
        }
      });
    }

    it("leaves nothing behind", { timeout: 120_000 }, async () => {
      if ((await settleWithin(rt.close(), 30_000)) === HANG)
        throw new Error(`${name}: close() did not settle`);
      // Whatever a run aborted mid-create might still make is swept by close(); give the daemon a moment.
      await new Promise((r) => setTimeout(r, 500));
      const left = await b.leftovers();
      tally.leftBehind = left.length;
      await b.cleanup();
      if (left.length) {
        const after = left.map((x) => `${x}, first seen after ${firstSeen.get(x) ?? "close"}`);
        throw new Error(`${name}: left behind:\n  ${after.join("\n  ")}`);
      }
    });
  });
}

function report(): void {
  const all = [...tallies.entries()];
  for (const [name, t] of all) {
    console.log(
      `fuzz: runtime surface: ${name}: ${RUNTIME_METHODS.length} methods, ${t.cases} cases, ${t.untyped} untyped, ` +
        `${t.hangs} hangs, ${t.leftBehind} left behind (${t.created} created and removed, ` +
        `${t.seconds.toFixed(1)} s, seed ${SEED})`,
    );
  }
  if (env.BERTH_SURFACE_FUZZ_VERBOSE === "1") {
    for (const [name, t] of all) {
      console.log(`  ${name}: ${[...t.typed].map(([k, n]) => `${k} ${n}`).join(", ")}`);
      const slow = [...t.slow].map(([m, x]) => `${m} ${x.cases} (${(x.ms / 1000).toFixed(1)} s)`);
      console.log(`  ${name}: cases over 2 ms: ${slow.join(", ")}`);
    }
  }
}
