// containerd client benchmarks, berth side by side with containerd's own `ctr`, on one daemon.
// Run on demand (`npm run bench:containerd`); these are measurements, not tests. CONTAINERD_ADDRESS selects
// the daemon, BERTH_REGISTRY a plain-HTTP registry to push the random-content images to; `ctr` is the
// daemon set's own (BERTH_SET_DIR's, else the one on PATH; BERTH_CTR overrides). BENCH_ONLY picks
// sections (a comma list of rss, pull, transfer, run; default all).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  ContainerdClient,
  type ContainerdPullOptions,
  hasTransferService,
  pull,
  run,
  withProcessArgs,
} from "@berth/containerd-client";
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
const setCtr = process.env.BERTH_SET_DIR ? join(process.env.BERTH_SET_DIR, "root/usr/bin/ctr") : "";
const ctrBin = process.env.BERTH_CTR ?? (setCtr && existsSync(setCtr) ? setCtr : "ctr");
const only = new Set((process.env.BENCH_ONLY ?? "rss,pull,transfer,run").split(",").map((s) => s.trim()));

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
  return exec(ctrBin, ["-a", address, "-n", ns, ...args], { maxBuffer: 64 * 2 ** 20 });
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

/** One way of pulling an image into a namespace, for the paired comparison. */
interface Puller {
  label: string;
  pull: (c: ContainerdClient, ref: string) => Promise<unknown>;
}

/**
 * Cold pulls by each puller, paired in one run: every round pulls a fresh image (pushed beforehand, so no
 * namespace holds its blobs) into a fresh namespace with each puller, the order rotating by round so none
 * always follows another's clean-up; round -1 warms up and is not counted. Returns the medians.
 */
async function pairedPulls(name: string, mibs: number[], pullers: Puller[]): Promise<number[]> {
  const refs: string[] = [];
  for (let i = 0; i < pullers.length * (pullRuns + 1); i++) refs.push(await pushImage(`${name}${i}`, mibs));
  const times: number[][] = pullers.map(() => []);
  for (let round = -1; round < pullRuns; round++) {
    const shift = (round + 1) % pullers.length;
    const order = pullers.map((_, i) => (i + shift) % pullers.length);
    for (const who of order) {
      const c = namespace();
      const ms = await time(() => (pullers[who] as Puller).pull(c, refs.shift() as string));
      if (round >= 0) times[who]?.push(ms);
      await dispose(c);
    }
  }
  const width = Math.max(...pullers.map((p) => p.label.length)) + 1;
  const medians = times.map(median);
  pullers.forEach((p, i) => {
    const ts = times[i] as number[];
    console.log(`${`${p.label}:`.padEnd(width)} median ${secs(medians[i] as number)} (${list(ts, secs)})`);
  });
  return medians;
}

/**
 * berth's client-side pull, the pull containerd does through its Transfer service (berth's `via:
 * "transfer"`), and `ctr images pull`, which uses the Transfer service on containerd 2.x (`--local`: ctr's
 * own client-side pull). Only on a daemon with the Transfer service.
 */
async function transferBench(): Promise<void> {
  if (!(await hasTransferService(root))) {
    console.log("\n## Client-side vs transfer pull: skipped, this containerd has no transfer service");
    return;
  }
  const { stdout } = (await exec(ctrBin, ["--version"])) as { stdout: string };
  const transfer: ContainerdPullOptions = { via: "transfer" };
  const pullers: Puller[] = [
    { label: "berth pull() (client-side)", pull: (c, ref) => pull(c, ref) },
    { label: 'berth pull({ via: "transfer" })', pull: (c, ref) => pull(c, ref, transfer) },
    {
      label: "ctr images pull (transfer service)",
      pull: (c, ref) => ctr(c.namespace, "images", "pull", "--plain-http", ref),
    },
    {
      label: "ctr images pull --local (client-side)",
      pull: (c, ref) => ctr(c.namespace, "images", "pull", "--local", "--plain-http", ref),
    },
  ];
  for (const [what, mibs] of [
    ["a 51 MiB, 3-layer image", layerMiB],
    ["a 1 MiB, 1-layer image", [1]],
  ] as const) {
    console.log(
      `\n## Cold pull + unpack of ${what}: client-side vs containerd's Transfer service (${stdout.trim()}; fresh image and namespace per pull, paired rounds, median of ${pullRuns})`,
    );
    const [client, viaTransfer, ctrTransfer, ctrLocal] = (await pairedPulls(
      `transfer-${mibs.length}x${mibs[0]}-`,
      [...mibs],
      pullers,
    )) as [number, number, number, number];
    console.log(
      `transfer / client-side = ${ratio(viaTransfer, client)}; client-side / ctr = ${ratio(client, ctrTransfer)}; ` +
        `transfer / ctr = ${ratio(viaTransfer, ctrTransfer)}; ctr --local / ctr = ${ratio(ctrLocal, ctrTransfer)}`,
    );
  }
}

/** Cold pulls: every run pulls an image never pulled before into a namespace of its own. */
async function pullBench(): Promise<void> {
  const total = layerMiB.reduce((a, b) => a + b, 0);
  console.log(
    `\n## Cold pull + unpack of a ${total} MiB, ${layerMiB.length}-layer image (fresh random image and namespace per run, after one warm-up pull each)`,
  );
  const [b, d] = (await pairedPulls("pull", layerMiB, [
    { label: "berth pull()", pull: (c, ref) => pull(c, ref) },
    {
      label: "ctr images pull --plain-http",
      pull: (c, ref) => ctr(c.namespace, "images", "pull", "--plain-http", ref),
    },
  ])) as [number, number];
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
  if (only.has("rss")) await rssBench();
  if (only.has("pull")) await pullBench();
  if (only.has("transfer")) await transferBench();
  if (only.has("run")) await runBench();
} finally {
  for (const c of [...namespaces]) await destroyNamespace(c).catch((e) => console.error(`cleanup: ${e}`));
  await rm(fifoDir, { recursive: true, force: true });
  root.close();
}
