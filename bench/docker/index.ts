// Docker client benchmarks, berth side by side with dockerode and a bare undici request, on one daemon.
// Run on demand (`npm run bench:docker`); these are measurements, not tests. DOCKER_HOST selects the daemon.
import { Writable } from "node:stream";
import { DockerClient, demultiplex, pull } from "@berth/docker-client";
import Docker from "dockerode";
import { Pool } from "undici";

const image = process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const host = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
const socketPath = host.replace(/^unix:\/\//, "");
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const logMiB = Number(process.env.BENCH_LOG_MIB ?? 256);
const exportMiB = Number(process.env.BENCH_EXPORT_MIB ?? 500);

const berth = new DockerClient({ host, apiVersion: "1.41" });
const dockerode = new Docker({ socketPath, version: "v1.41" });
const bare = new Pool("http://localhost", { connect: { socketPath }, connections: 32, pipelining: 1 });

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

/** Run `fn` with `concurrency` loops for `seconds`; returns requests per second. */
async function throughput(concurrency: number, fn: () => Promise<unknown>): Promise<number> {
  // warm-up
  for (let i = 0; i < 50; i++) await fn();
  let count = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await fn();
        count++;
      }
    }),
  );
  return count / ((performance.now() - start) / 1000);
}

/** CPU time (user+system, ms) and peak RSS growth (MiB) of an async operation. */
async function measure(fn: () => Promise<void>): Promise<{ cpuMs: number; rssMiB: number; wallMs: number }> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wallMs = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  return { cpuMs: (used.user + used.system) / 1000, rssMiB: (peak - base) / 2 ** 20, wallMs };
}

async function makeContainer(cmd: string[]): Promise<string> {
  const { Id } = await berth.containers.create({
    body: { Image: image, Cmd: cmd, Labels: { "berth.bench": "1" } },
  });
  await berth.containers.start({ id: Id });
  await berth.containers.wait({ id: Id });
  return Id;
}

async function inspectBench(id: string): Promise<void> {
  console.log("\n## GET /containers/{id}/json throughput");
  for (const c of [1, 32]) {
    const b = await throughput(c, () => berth.containers.inspect({ id }));
    const d = await throughput(c, () => dockerode.getContainer(id).inspect());
    const u = await throughput(c, async () => {
      const res = await bare.request({ path: `/v1.41/containers/${id}/json`, method: "GET" });
      await res.body.json();
    });
    console.log(
      `concurrency ${String(c).padStart(2)}: berth ${fmt(b)} req/s, dockerode ${fmt(d)} req/s, bare undici ${fmt(u)} req/s` +
        ` | berth/dockerode ${ratio(b, d)}, berth/undici ${ratio(b, u)} (target: >= 1.00x dockerode, >= 0.83x undici)`,
    );
  }
}

async function logsBench(id: string): Promise<void> {
  console.log(`\n## Reading ${logMiB} MiB of multiplexed logs from an exited container`);
  const sink = () =>
    new Writable({
      write(_chunk, _enc, cb) {
        cb();
      },
    });
  const b = await measure(async () => {
    let bytes = 0;
    for await (const f of await berth.containers.logs({ id, stdout: true, stderr: true }))
      bytes += f.data.length;
    if (bytes < logMiB * 2 ** 20) throw new Error(`berth read only ${bytes} bytes`);
  });
  const d = await measure(async () => {
    const stream = (await dockerode
      .getContainer(id)
      .logs({ stdout: true, stderr: true, follow: true })) as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => {
      dockerode.modem.demuxStream(stream, sink(), sink());
      stream.on("end", resolve);
      stream.on("error", reject);
    });
  });
  const d2 = await measure(async () => {
    // follow=false: dockerode buffers the whole body before returning it.
    const body = (await dockerode
      .getContainer(id)
      .logs({ stdout: true, stderr: true, follow: false })) as Buffer;
    if (body.length < logMiB * 2 ** 20) throw new Error("short");
  });
  const u = await measure(async () => {
    const res = await bare.request({ path: `/v1.41/containers/${id}/logs?stdout=1&stderr=1`, method: "GET" });
    for await (const _ of res.body) {
      // read only
    }
  });
  const row = (name: string, m: { cpuMs: number; rssMiB: number; wallMs: number }) =>
    `${name.padEnd(34)} CPU ${fmt(m.cpuMs)} ms, wall ${fmt(m.wallMs)} ms (${fmt(logMiB / (m.wallMs / 1000))} MiB/s), peak RSS growth ${fmt(m.rssMiB, 1)} MiB`;
  console.log(row("berth (frames, no copy)", b));
  console.log(row("dockerode (follow + demuxStream)", d));
  console.log(row("dockerode (follow=false, buffered)", d2));
  console.log(row("bare undici read (no demux)", u));
  console.log(
    `berth CPU / dockerode CPU = ${ratio(b.cpuMs, d.cpuMs)} (target <= 0.60x); berth CPU / bare read = ${ratio(b.cpuMs, u.cpuMs)}; berth RSS growth ${fmt(b.rssMiB, 1)} MiB (target < 64 MiB)`,
  );
}

async function demuxBench(): Promise<void> {
  console.log("\n## Demultiplexer alone, recorded in-memory stream");
  for (const frameSize of [16 * 1024, 100]) {
    const total = 256 * 2 ** 20;
    const frame = new Uint8Array(8 + frameSize);
    frame[0] = 1;
    new DataView(frame.buffer).setUint32(4, frameSize);
    const frames = Math.floor(total / frame.length);
    // 64 KiB chunks, as a socket would deliver them, with frames straddling chunk boundaries.
    const stream = new Uint8Array(frames * frame.length);
    for (let i = 0; i < frames; i++) stream.set(frame, i * frame.length);
    const chunks: Uint8Array[] = [];
    for (let o = 0; o < stream.length; o += 65536) chunks.push(stream.subarray(o, o + 65536));
    async function* source() {
      yield* chunks;
    }
    const t0 = performance.now();
    let bytes = 0;
    for await (const f of demultiplex(source())) bytes += f.data.length;
    const s = (performance.now() - t0) / 1000;
    console.log(
      `${String(frameSize).padStart(5)}-byte frames: ${fmt(bytes / s / 2 ** 30, 2)} GiB/s of payload` +
        (frameSize === 16 * 1024 ? " (target >= 1 GiB/s)" : ""),
    );
  }
}

async function exportBench(): Promise<void> {
  console.log(`\n## Export of a container filesystem with a ${exportMiB} MiB file`);
  const id = await makeContainer([
    "sh",
    "-c",
    `dd if=/dev/urandom of=/big bs=1048576 count=${exportMiB} 2>/dev/null`,
  ]);
  try {
    const b = await measure(async () => {
      let bytes = 0;
      for await (const chunk of await berth.containers.export({ id })) bytes += (chunk as Buffer).length;
      if (bytes < exportMiB * 2 ** 20) throw new Error("short export");
    });
    const d = await measure(async () => {
      const stream = (await dockerode.getContainer(id).export()) as NodeJS.ReadableStream;
      for await (const _ of stream) {
        // discard
      }
    });
    console.log(`berth:     peak RSS growth ${fmt(b.rssMiB, 1)} MiB, ${fmt(b.wallMs)} ms (target < 64 MiB)`);
    console.log(`dockerode: peak RSS growth ${fmt(d.rssMiB, 1)} MiB, ${fmt(d.wallMs)} ms`);
  } finally {
    await berth.containers.remove({ id, force: true });
  }
}

try {
  console.log(`# berth Docker benchmarks against ${host} (${seconds} s per throughput run)`);
  await pull(berth, image);
  const small = await makeContainer(["true"]);
  const chatty = await makeContainer([
    "sh",
    "-c",
    `head -c ${logMiB * 1024 * 1024} /dev/zero | tr '\\0' x | fold -w 1023`,
  ]);
  try {
    await inspectBench(small);
    await demuxBench();
    await logsBench(chatty);
    await exportBench();
  } finally {
    await berth.containers.remove({ id: small, force: true });
    await berth.containers.remove({ id: chatty, force: true });
  }
} finally {
  await berth.close();
  await bare.close();
}
