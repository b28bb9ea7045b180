// CRI client benchmarks: berth's CriClient side by side with a bare @grpc/grpc-js call, on one runtime.
// Run on demand (`npm run bench:cri`); these are measurements, not tests. CONTAINER_RUNTIME_ENDPOINT
// selects the runtime. The bare peer is a grpc.Client on the same socket, with the same channel options,
// calling makeUnaryRequest with the same request message, encoded per call and decoded with the same
// generated codec (what ts-proto's own grpc-js client does): what berth adds over grpc-js is building the
// request, metadata, deadlines (CRI's default 2 minutes on ContainerStatus; the bare call has none),
// abort and error mapping.
//
// The runtime's own time dominates both sides and drifts on a shared machine, so the same calls are
// then run against a stand-in runtime that replays the real runtime's answers (replay-server.ts): there
// the clients' own cost is what is measured. BENCH_REPLAY=0 skips that part.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
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
const replay = process.env.BENCH_REPLAY !== "0";
const run = `berth-bench-${process.pid}-${randomBytes(3).toString("hex")}`;
const labels = { "berth.bench": run };

/** Same target and channel options as berth's GrpcChannel (16 MiB limits, its own subchannel), so both
 *  ride equal transports. */
function bareClient(berth: CriClient): grpc.Client {
  return new grpc.Client(berth.channel.client.getChannel().getTarget(), grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
    "grpc.max_send_message_length": 16 * 1024 * 1024,
    "grpc.use_local_subchannel_pool": 1,
  });
}

interface Clients {
  berth: CriClient;
  bare: grpc.Client;
}

const berth = CriClient.fromEnv();
const live: Clients = { berth, bare: bareClient(berth) };

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

/**
 * A bare unary call as ts-proto's generated grpc-js client makes it: the request message encoded on each
 * call (a caller's request changes from call to call), the generated decode on the answer.
 */
function bareUnary<Q, T>(
  bare: grpc.Client,
  path: string,
  request: Q,
  encode: (q: Q) => { finish(): Uint8Array },
  decode: (b: Buffer) => T,
): () => Promise<T> {
  const serialize = (q: Q) => Buffer.from(encode(q).finish());
  return () =>
    new Promise((resolve, reject) => {
      bare.makeUnaryRequest(path, serialize, decode, request, (err, res) => {
        if (err) reject(err);
        else resolve(res as T);
      });
    });
}

const methodPath = (m: { name: string }) => `/${RuntimeServiceDefinition.fullName}/${m.name}`;

async function execSyncBench(id: string, { berth, bare }: Clients, title = ""): Promise<void> {
  console.log(`\n## ExecSync \`true\`${title}`);
  const cmd = ["true"];
  const a = async () => {
    const r = await berth.execSync(id, cmd);
    if (r.exitCode !== 0) throw new Error(`berth: exit ${r.exitCode}`);
  };
  const call = bareUnary(
    bare,
    methodPath(RuntimeServiceDefinition.methods.execSync),
    { containerId: id, cmd, timeout: 0n },
    (q: ExecSyncRequest) => ExecSyncRequest.encode(q),
    (b) => ExecSyncResponse.decode(b),
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

async function statusBench(id: string, { berth, bare }: Clients, title = ""): Promise<void> {
  console.log(`\n## ContainerStatus${title}`);
  const a = async () => {
    const r = await berth.containerStatus(id);
    if (r.status?.id !== id) throw new Error("berth: wrong status");
  };
  const call = bareUnary(
    bare,
    methodPath(RuntimeServiceDefinition.methods.containerStatus),
    { containerId: id, verbose: false },
    (q: ContainerStatusRequest) => ContainerStatusRequest.encode(q),
    (b) => ContainerStatusResponse.decode(b),
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

/**
 * The same comparisons against a stand-in runtime (a child process) answering with the bytes the real
 * runtime sent for these requests: the clients' own cost, without the runtime's time and drift.
 */
async function replayBench(id: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "berth-bench-cri-"));
  try {
    const status = await berth.containerStatus(id);
    const exec = await berth.execSync(id, ["true"]);
    await writeFile(join(dir, "status.bin"), ContainerStatusResponse.encode(status).finish());
    await writeFile(
      join(dir, "exec.bin"),
      ExecSyncResponse.encode(ExecSyncResponse.fromPartial(exec)).finish(),
    );
    const server = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(new URL("./replay-server.ts", import.meta.url)), dir],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const [line] = (await Promise.race([
        once(createInterface({ input: server.stdout }), "line"),
        once(server, "exit").then(([code]) => {
          throw new Error(`replay server exited (${code})`);
        }),
      ])) as [string];
      if (line !== "ready") throw new Error(`replay server: ${line}`);
      const stand = new CriClient({ endpoint: `unix://${join(dir, "cri.sock")}` });
      const clients: Clients = { berth: stand, bare: bareClient(stand) };
      try {
        const title = " (stand-in runtime replaying the answers above: the clients' own cost)";
        await execSyncBench(id, clients, title);
        await statusBench(id, clients, title);
      } finally {
        stand.close();
        clients.bare.close();
      }
    } finally {
      server.kill();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
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
    await execSyncBench(id, live);
    await statusBench(id, live);
    if (replay) await replayBench(id);
  } finally {
    await cleanup();
  }
} finally {
  berth.close();
  live.bare.close();
}
