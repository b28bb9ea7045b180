// CRI client benchmarks: berth's CriClient side by side with a bare @grpc/grpc-js call, on one runtime.
// Run on demand (`npm run bench:cri`); these are measurements, not tests. CONTAINER_RUNTIME_ENDPOINT
// selects the runtime. The bare peer is a grpc.Client on the same socket calling makeUnaryRequest with
// the same request bytes (serialized once, up front) and the generated decode: what berth adds over
// grpc-js is request encoding, metadata, deadlines and error mapping.
import { randomBytes } from "node:crypto";
import {
  ContainerStatusRequest,
  ContainerStatusResponse,
  CriClient,
  ExecSyncRequest,
  ExecSyncResponse,
  NamespaceMode,
  RuntimeServiceDefinition,
} from "@berth/crio-client";
import * as grpc from "@grpc/grpc-js";

const image = process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 1);
/** Rounds of berth-then-bare (ABAB...), pooled, to spread drift on a shared machine over both sides. */
const pairs = Number(process.env.BENCH_PAIRS ?? 3);
const run = `berth-bench-${process.pid}-${randomBytes(3).toString("hex")}`;
const labels = { "berth.bench": run };

const berth = CriClient.fromEnv();
// Same target and channel options as berth's GrpcChannel (16 MiB limits), so both ride equal transports.
const bare = new grpc.Client(
  berth.channel.client.getChannel().getTarget(),
  grpc.credentials.createInsecure(),
  {
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
    "grpc.max_send_message_length": 16 * 1024 * 1024,
  },
);

// Rates under 10/s (ExecSync at 32: containerd 1.6 stalls ~25 s on 32 concurrent execs) keep 2 decimals.
const fmt = (n: number, digits = n < 10 ? 2 : 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits });
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

interface Run {
  calls: number;
  ms: number;
  latencies: number[];
}

/** `concurrency` loops calling `fn` back to back for `secs`. */
async function loop(concurrency: number, secs: number, fn: () => Promise<unknown>): Promise<Run> {
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + secs * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await fn();
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { calls: latencies.length, ms: performance.now() - start, latencies };
}

interface Pooled {
  rate: number;
  p50: number;
  rates: number[];
}

function pool(runs: Run[]): Pooled {
  const calls = runs.reduce((n, r) => n + r.calls, 0);
  const ms = runs.reduce((n, r) => n + r.ms, 0);
  return {
    rate: calls / (ms / 1000),
    p50: median(runs.flatMap((r) => r.latencies)),
    rates: runs.map((r) => r.calls / (r.ms / 1000)),
  };
}

/** Warm both up, then alternate berth and bare runs; each side's runs pooled. */
async function compare(
  concurrency: number,
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
): Promise<{ berth: Pooled; bare: Pooled; pairRatios: number[] }> {
  await loop(concurrency, warmupSeconds, a);
  await loop(concurrency, warmupSeconds, b);
  const ra: Run[] = [];
  const rb: Run[] = [];
  for (let i = 0; i < pairs; i++) {
    ra.push(await loop(concurrency, seconds, a));
    rb.push(await loop(concurrency, seconds, b));
  }
  const pa = pool(ra);
  const pb = pool(rb);
  return { berth: pa, bare: pb, pairRatios: pa.rates.map((r, i) => r / (pb.rates[i] as number)) };
}

const spread = (rs: number[]) => `per pair ${rs.map((r) => r.toFixed(2)).join(" ")}`;

/** A bare unary call: pre-serialized request bytes passed through, the generated decode on the answer. */
function bareUnary<T>(path: string, bytes: Buffer, decode: (b: Buffer) => T): () => Promise<T> {
  const serialize = (b: Buffer) => b;
  return () =>
    new Promise((resolve, reject) => {
      bare.makeUnaryRequest(path, serialize, decode, bytes, (err, res) => {
        if (err) reject(err);
        else resolve(res as T);
      });
    });
}

const methodPath = (m: { name: string }) => `/${RuntimeServiceDefinition.fullName}/${m.name}`;

async function execSyncBench(id: string): Promise<void> {
  console.log("\n## ExecSync `true`");
  const cmd = ["true"];
  const bytes = Buffer.from(ExecSyncRequest.encode({ containerId: id, cmd, timeout: 0n }).finish());
  const a = async () => {
    const r = await berth.execSync(id, cmd);
    if (r.exitCode !== 0) throw new Error(`berth: exit ${r.exitCode}`);
  };
  const call = bareUnary(methodPath(RuntimeServiceDefinition.methods.execSync), bytes, (b) =>
    ExecSyncResponse.decode(b),
  );
  const b = async () => {
    const r = await call();
    if (r.exitCode !== 0) throw new Error(`bare: exit ${r.exitCode}`);
  };
  const one = await compare(1, a, b);
  console.log(
    `concurrency  1: berth median ${fmt(one.berth.p50, 2)} ms, bare median ${fmt(one.bare.p50, 2)} ms` +
      ` | berth/bare ${ratio(one.berth.p50, one.bare.p50)} latency (target <= 1.10x)` +
      ` [calls/s berth ${fmt(one.berth.rate)}, bare ${fmt(one.bare.rate)}]`,
  );
  const many = await compare(32, a, b);
  console.log(
    `concurrency 32: berth ${fmt(many.berth.rate)} calls/s, bare ${fmt(many.bare.rate)} calls/s` +
      ` | berth/bare ${ratio(many.berth.rate, many.bare.rate)} throughput (target >= 0.91x) [${spread(many.pairRatios)}]`,
  );
}

async function statusBench(id: string): Promise<void> {
  console.log("\n## ContainerStatus");
  const bytes = Buffer.from(ContainerStatusRequest.encode({ containerId: id, verbose: false }).finish());
  const a = async () => {
    const r = await berth.containerStatus(id);
    if (r.status?.id !== id) throw new Error("berth: wrong status");
  };
  const call = bareUnary(methodPath(RuntimeServiceDefinition.methods.containerStatus), bytes, (b) =>
    ContainerStatusResponse.decode(b),
  );
  const b = async () => {
    const r = await call();
    if (r.status?.id !== id) throw new Error("bare: wrong status");
  };
  for (const c of [1, 32]) {
    const r = await compare(c, a, b);
    console.log(
      `concurrency ${String(c).padStart(2)}: berth ${fmt(r.berth.rate)} calls/s, bare ${fmt(r.bare.rate)} calls/s` +
        ` | berth/bare ${ratio(r.berth.rate, r.bare.rate)} throughput (target >= 0.91x) [${spread(r.pairRatios)}]` +
        ` [median berth ${fmt(r.berth.p50, 2)} ms, bare ${fmt(r.bare.p50, 2)} ms]`,
    );
  }
}

/** Remove everything this run labelled; safe to call twice. */
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of await berth.listContainers({ labelSelector: labels })) {
      await berth.stopContainer(c.id, 0).catch(() => {});
      await berth.removeContainer(c.id).catch((err) => console.error(`remove container ${c.id}:`, err));
    }
    for (const p of await berth.listPodSandbox({ labelSelector: labels })) {
      await berth.stopPodSandbox(p.id).catch(() => {});
      await berth.removePodSandbox(p.id).catch((err) => console.error(`remove pod ${p.id}:`, err));
    }
  })();
  return cleaning;
}

process.once("SIGINT", () => {
  console.error("\ninterrupted: removing the bench pod");
  cleanup().finally(() => process.exit(130));
});

try {
  const v = await berth.version();
  console.log(
    `# berth CRI benchmarks against ${berth.endpoint} (${v.runtimeName} ${v.runtimeVersion}; ` +
      `${seconds} s per run, ${pairs} berth/bare pairs, ${warmupSeconds} s warm-up each)`,
  );
  await berth.pullImage(image, { auth: false });
  try {
    const pod = await berth.runPodSandbox({
      metadata: { name: run, uid: run, namespace: "berth-bench" },
      labels,
      linux: {
        securityContext: {
          namespaceOptions: {
            network: NamespaceMode.NODE,
            pid: NamespaceMode.CONTAINER,
            ipc: NamespaceMode.POD,
          },
        },
      },
    });
    const id = await berth.createContainer(pod, {
      metadata: { name: "sleeper" },
      image: { image },
      labels,
      command: ["sleep", "3600"],
    });
    await berth.startContainer(id);
    await execSyncBench(id);
    await statusBench(id);
  } finally {
    await cleanup();
  }
} finally {
  berth.close();
  bare.close();
}
