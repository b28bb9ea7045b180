// containerd client benchmarks, berth side by side with containerd's own `ctr`, on one daemon.
// Run on demand (`npm run bench:containerd`); these are measurements, not tests. CONTAINERD_ADDRESS selects
// the daemon, BERTH_REGISTRY a plain-HTTP registry to push the random-content images to.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ContainerdClient, pull, run, withProcessArgs } from "@berth/containerd-client";
import { destroyNamespace, freshNamespace } from "./namespace.js";

const exec = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const address = process.env.CONTAINERD_ADDRESS ?? "/run/containerd/containerd.sock";
const registry = process.env.BERTH_REGISTRY ?? "127.0.0.1:5000";
const image = process.env.BERTH_TEST_IMAGE ?? `${registry}/busybox:latest`;
const runcRoot = process.env.BERTH_RUNC_ROOT;
const pullRuns = Number(process.env.BENCH_PULL_RUNS ?? 5);
const runRuns = Number(process.env.BENCH_RUN_RUNS ?? 10);
const layerMiB = [17, 17, 17];
const bigMiB = Number(process.env.BENCH_BIG_MIB ?? 500);
const benchId = randomBytes(4).toString("hex");

// `tsx` gives no --expose-gc: turn it on here, so RSS baselines start from a collected heap.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const root = ContainerdClient.fromEnv();
const namespaces: ContainerdClient[] = [];
const fifoDir = await mkdtemp(join(tmpdir(), "berth-bench-ctr-"));

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const list = (xs: number[], unit: (n: number) => string) => xs.map(unit).join(", ");
const secs = (ms: number) => `${fmt(ms / 1000, 3)} s`;

function namespace(): ContainerdClient {
  const c = freshNamespace(root);
  namespaces.push(c);
  return c;
}

async function dispose(c: ContainerdClient): Promise<void> {
  await destroyNamespace(c);
  namespaces.splice(namespaces.indexOf(c), 1);
}

function ctr(ns: string, ...args: string[]): Promise<unknown> {
  return exec("ctr", ["-a", address, "-n", ns, ...args], { maxBuffer: 64 * 2 ** 20 });
}

/** Push an image of fresh random layers (blobs no namespace holds yet); returns its reference. */
async function pushImage(name: string, mibs: number[]): Promise<string> {
  const ref = `${registry}/berth-bench-${name}:${benchId}`;
  await exec("bash", [join(here, "image.sh"), ref, ...mibs.map(String)], { timeout: 120_000 });
  return ref;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Peak RSS growth (MiB) over an async operation, sampled every 10 ms, and its wall time. */
async function measureRss(fn: () => Promise<unknown>): Promise<{ rssMiB: number; wallMs: number }> {
  gc();
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  const wallMs = performance.now() - t0;
  peak = Math.max(peak, process.memoryUsage().rss);
  return { rssMiB: (peak - base) / 2 ** 20, wallMs };
}

/** Cold pulls: every run pulls an image never pulled before into a namespace of its own. */
async function pullBench(): Promise<void> {
  const total = layerMiB.reduce((a, b) => a + b, 0);
  console.log(
    `\n## Cold pull + unpack of a ${total} MiB, ${layerMiB.length}-layer image (fresh random image and namespace per run, after one warm-up pull each)`,
  );
  const refs: string[] = [];
  for (let i = 0; i < 2 * (pullRuns + 1); i++) refs.push(await pushImage(`pull${i}`, layerMiB));
  const berth: number[] = [];
  const ctrMs: number[] = [];
  // Run -1 warms up (this process's JIT and connections, the daemon's caches) and is not counted.
  for (let i = -1; i < pullRuns; i++) {
    // alternate who goes first, so neither always follows the other's garbage collection
    const order = i % 2 === 0 ? ["berth", "ctr"] : ["ctr", "berth"];
    for (const who of order) {
      const c = namespace();
      const ref = refs.shift() as string;
      const into = i < 0 ? [] : who === "berth" ? berth : ctrMs;
      if (who === "berth") into.push(await time(() => pull(c, ref)));
      else into.push(await time(() => ctr(c.namespace, "images", "pull", "--plain-http", ref)));
      await dispose(c);
    }
  }
  const b = median(berth);
  const d = median(ctrMs);
  console.log(`berth pull():                median ${secs(b)} (${list(berth, secs)})`);
  console.log(`ctr images pull --plain-http: median ${secs(d)} (${list(ctrMs, secs)})`);
  console.log(`berth / ctr = ${ratio(b, d)} (target <= 1.10x)`);
}

async function rssBench(): Promise<void> {
  console.log(`\n## Peak RSS growth while pulling an image with one ${bigMiB} MiB layer`);
  const berthRef = await pushImage("big-berth", [bigMiB]);
  const ctrRef = await pushImage("big-ctr", [bigMiB]);
  const c = namespace();
  const b = await measureRss(() => pull(c, berthRef));
  await dispose(c);
  const c2 = namespace();
  const d = await time(() => ctr(c2.namespace, "images", "pull", "--plain-http", ctrRef));
  await dispose(c2);
  console.log(
    `berth pull(): peak RSS growth ${fmt(b.rssMiB, 1)} MiB (target < 64 MiB), ${secs(b.wallMs)}` +
      ` (${fmt(bigMiB / (b.wallMs / 1000))} MiB/s)`,
  );
  console.log(`ctr pull of the same size (for reference): ${secs(d)}, berth / ctr = ${ratio(b.wallMs, d)}`);
}

/** Run-to-exit of `true`: create, start, wait, delete. */
async function runBench(): Promise<void> {
  console.log(`\n## Run-to-exit latency of \`true\` in ${image} (create, start, wait, delete)`);
  const c = namespace();
  await pull(c, image);
  const runtime = runcRoot ? { root: runcRoot } : {};
  const runcArgs = runcRoot ? ["--runc-root", runcRoot] : [];
  let n = 0;
  const berthRun = async () => {
    const r = await run(c, image, {
      id: `berth-${benchId}-${n++}`,
      pull: false,
      runtime,
      spec: [withProcessArgs("true")],
    });
    if (r.exitCode !== 0) throw new Error(`berth run exited ${r.exitCode}: ${r.stderr}`);
  };
  const ctrRun = () =>
    ctr(
      c.namespace,
      "run",
      "--rm",
      ...runcArgs,
      "--fifo-dir",
      fifoDir,
      image,
      `ctr-${benchId}-${n++}`,
      "true",
    );
  try {
    // warm-up: ctr unpacks nothing more, and both paths have their binaries and shims in the page cache
    for (let i = 0; i < 2; i++) {
      await berthRun();
      await ctrRun();
    }
    const berth: number[] = [];
    const ctrMs: number[] = [];
    for (let i = 0; i < runRuns; i++) {
      if (i % 2 === 0) {
        berth.push(await time(berthRun));
        ctrMs.push(await time(ctrRun));
      } else {
        ctrMs.push(await time(ctrRun));
        berth.push(await time(berthRun));
      }
    }
    const ms = (x: number) => `${fmt(x)}`;
    const b = median(berth);
    const d = median(ctrMs);
    console.log(`berth run():   median ${fmt(b, 1)} ms (${list(berth, ms)} ms)`);
    console.log(`ctr run --rm:  median ${fmt(d, 1)} ms (${list(ctrMs, ms)} ms)`);
    console.log(`berth / ctr = ${ratio(b, d)} (target <= 1.20x)`);
  } finally {
    await dispose(c);
  }
}

try {
  const { version } = await root.version.version({});
  console.log(`# berth containerd benchmarks against containerd ${version} at ${address}`);
  // warm the connection and the code paths once, outside any measurement
  const warm = namespace();
  await pull(warm, image);
  await dispose(warm);
  await rssBench();
  await pullBench();
  await runBench();
} finally {
  for (const c of [...namespaces]) await destroyNamespace(c).catch((e) => console.error(`cleanup: ${e}`));
  await rm(fifoDir, { recursive: true, force: true });
  root.close();
}
