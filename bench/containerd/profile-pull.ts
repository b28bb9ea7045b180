// Where a client-side pull spends its time. A diagnostic run by hand next to the benchmark, with the same
// environment: `npx tsx containerd/profile-pull.ts [phase...]`. Every phase interleaves its variants run by
// run (the machine is shared: compare lines of one run, not runs) and prints wall time, this process's CPU
// (plus ctr's own, for ctr) and containerd's CPU over the same span.
//   parts     registry download alone; Content.Write from memory through writeBlob and through raw
//             grpc-js with prebuilt messages; the two together; `ctr content ingest` of the same bytes
//   split     berth pull with and without unpacking, next to `ctr content fetch` and `ctr images pull`
//   downloads berth with 1, 2 and 3 layer downloads at once, and ctr
//   timeline  when each blob of a berth pull is in and each layer unpacked, next to a ctr pull
//   ab        berth as committed (built from HEAD into PROFILE_BEFORE, see below), the working tree, ctr
// Like the benchmark, it pushes fresh random images (51 MiB each, one per pull) to the registry and leaves
// them there. PROFILE_RUNS (default 5) sets the runs per variant. For `ab`, build HEAD's packages elsewhere first, e.g.
// into /tmp/berth-before with `git archive HEAD packages/grpc packages/containerd-client
// packages/runtime-core tsconfig.base.json`, node_modules linked to this checkout's, @berth/* to the copies.
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  ContainerdClient,
  contentV1,
  pull,
  pullProgress,
  RegistryClient,
  writeBlob,
} from "@berth/containerd-client";
import { parseImageRef } from "@berth/runtime-core";
import * as grpc from "@grpc/grpc-js";
import { destroyNamespace, freshNamespace } from "./namespace.js";

const exec = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const address = process.env.CONTAINERD_ADDRESS ?? "/run/containerd/containerd.sock";
const registry = process.env.BERTH_REGISTRY ?? "127.0.0.1:5000";
const runs = Number(process.env.PROFILE_RUNS ?? 5);
const phases = process.argv.slice(2).length ? process.argv.slice(2) : ["parts", "split", "timeline"];
const layers = [17, 17, 17];
const imageMiB = layers.reduce((a, b) => a + b, 0);
const id = randomBytes(4).toString("hex");
const root = ContainerdClient.fromEnv();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
const ms = (n: number) => n.toFixed(0);

/** containerd's CPU time in ms, from /proc (0 when the daemon is not visible from here): the daemon
 *  started with a config next to the socket (the harness's), else the oldest containerd. */
const pgrep = (...args: string[]) =>
  exec("pgrep", ["-o", ...args]).then(
    (r) => r.stdout.trim(),
    () => "",
  );
const daemonPid =
  (await pgrep("-f", `containerd --config ${dirname(address)}/`)) || (await pgrep("-x", "containerd"));
async function daemonCpu(): Promise<number> {
  const stat = await readFile(`/proc/${daemonPid}/stat`, "utf8").catch(() => "");
  const f = stat.split(") ")[1]?.split(" ") ?? [];
  return ((Number(f[11] ?? 0) + Number(f[12] ?? 0)) * 1000) / 100;
}

/** Wall and CPU of one run of each variant per round, the order rotating round by round. */
async function compare(
  title: string,
  mib: number,
  variants: [string, () => Promise<() => Promise<unknown>>][],
): Promise<void> {
  console.log(`\n## ${title}`);
  const rows = new Map(
    variants.map(([name]) => [name, { wall: [] as number[], cpu: [] as number[], daemon: [] as number[] }]),
  );
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < variants.length; j++) {
      const [name, prepare] = variants[(i + j) % variants.length] as (typeof variants)[number];
      const run = await prepare();
      childCpu = 0;
      const c0 = process.cpuUsage();
      const d0 = await daemonCpu();
      const t0 = performance.now();
      await run();
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const row = rows.get(name) as { wall: number[]; cpu: number[]; daemon: number[] };
      row.wall.push(wall);
      row.cpu.push((c.user + c.system) / 1000 + childCpu);
      row.daemon.push((await daemonCpu()) - d0);
    }
  }
  const base = median(rows.get(variants[variants.length - 1]?.[0] as string)?.wall ?? [1]);
  for (const [name, r] of rows) {
    const w = median(r.wall);
    console.log(
      `${name.padEnd(34)} ${ms(w).padStart(5)} ms ${`(${(w / base).toFixed(2)}x)`.padStart(8)} ` +
        `${`${ms(mib / (w / 1000))} MiB/s`.padStart(10)}   cpu: client ${ms(median(r.cpu)).padStart(4)} ms, ` +
        `containerd ${ms(median(r.daemon)).padStart(4)} ms   (${r.wall.map(ms).join(", ")})`,
    );
  }
}

/** ctr's own CPU (GNU time), added to the client column of the run in progress. */
let childCpu = 0;
async function ctr(ns: string, ...args: string[]): Promise<void> {
  const { stderr } = await exec(
    "/usr/bin/time",
    ["-f", "CPU %U %S", "ctr", "-a", address, "-n", ns, ...args],
    {
      maxBuffer: 64 * 2 ** 20,
    },
  );
  const m = /CPU ([\d.]+) ([\d.]+)/.exec(stderr);
  if (m) childCpu += (Number(m[1]) + Number(m[2])) * 1000;
}

/** A fresh namespace for each run, destroyed (with everything in it) once the measurement is over. */
const namespaces: ContainerdClient[] = [];
function namespace(): ContainerdClient {
  const c = freshNamespace(root);
  namespaces.push(c);
  return c;
}
async function cleanup(): Promise<void> {
  for (const c of namespaces.splice(0)) await destroyNamespace(c).catch(() => {});
}

let pushed = 0;
async function pushImage(mibs: number[]): Promise<string> {
  const ref = `${registry}/berth-profile-${id}:${pushed++}`;
  await exec("bash", [join(here, "image.sh"), ref, ...mibs.map(String)], { timeout: 120_000 });
  return ref;
}
function randomBlob(mib: number): { bytes: Buffer; digest: string } {
  const bytes = randomBytes(mib * 2 ** 20);
  return { bytes, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` };
}

/** Content.Write through grpc-js alone: every message prebuilt (now), 1 MiB of data each, `window` in
 *  flight (when the returned function runs). */
function rawWriter(c: ContainerdClient, bytes: Buffer, digest: string, window: number): () => Promise<void> {
  const { WriteAction, WriteContentRequest } = contentV1;
  const base = { ref: `raw-${digest}`, total: BigInt(bytes.length), expected: digest };
  const encode = (m: Partial<contentV1.WriteContentRequest>) =>
    Buffer.from(WriteContentRequest.encode(WriteContentRequest.fromPartial(m as never)).finish());
  const messages = [encode({ ...base, action: WriteAction.STAT })];
  for (let o = 0; o < bytes.length; o += 2 ** 20) {
    messages.push(
      encode({ action: WriteAction.WRITE, offset: BigInt(o), data: bytes.subarray(o, o + 2 ** 20) }),
    );
  }
  messages.push(encode({ ...base, action: WriteAction.COMMIT, offset: BigInt(bytes.length) }));
  const md = new grpc.Metadata();
  md.set("containerd-namespace", c.namespace);
  return () =>
    new Promise<void>((resolve, reject) => {
      const identity = (b: Buffer) => b;
      const call = c.channel.client.makeBidiStreamRequest(
        "/containerd.services.content.v1.Content/Write",
        identity,
        identity,
        md,
        {},
      );
      let sent = 0;
      let answered = 0;
      const send = () => {
        while (sent < messages.length && sent - answered < window) call.write(messages[sent++] as Buffer);
        if (sent === messages.length) call.end();
      };
      call.on("data", () => {
        answered++;
        send();
      });
      call.on("error", reject);
      call.on("end", resolve);
      send();
    });
}

async function ctrIngest(c: ContainerdClient, bytes: Buffer, digest: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = spawn(
      "/usr/bin/time",
      ["-f", "CPU %U %S", "ctr", "-a", address, "-n", c.namespace, "content", "ingest"].concat([
        "--expected-size",
        String(bytes.length),
        "--expected-digest",
        digest,
        `ctr-${digest}`,
      ]),
      { stdio: ["pipe", "ignore", "pipe"] },
    );
    let err = "";
    p.stderr.on("data", (d) => {
      err += d;
    });
    p.stdin.end(bytes);
    p.on("exit", (code) => {
      const m = /CPU ([\d.]+) ([\d.]+)/.exec(err);
      if (m) childCpu += (Number(m[1]) + Number(m[2])) * 1000;
      code === 0 ? resolve() : reject(new Error(`ctr exited ${code}: ${err}`));
    });
  });
}

async function parts(): Promise<void> {
  const reg = new RegistryClient();
  const blobs = async (ref: string) => {
    const r = parseImageRef(ref);
    const { manifest } = await reg.resolve(r);
    return { r, ls: manifest.json.layers.map((l) => ({ ...l, size: Number(l.size) })) };
  };
  const download = await blobs(await pushImage(layers));
  await compare(`The parts of a pull, ${imageMiB} MiB (3 blobs of 17 MiB, one after another)`, imageMiB, [
    [
      "registry download (hashed)",
      async () => async () => {
        for (const l of download.ls) for await (const _ of await reg.fetchBlob(download.r, l));
      },
    ],
    [
      "registry download (size checked)",
      async () => async () => {
        for (const l of download.ls)
          for await (const _ of await reg.fetchBlob(download.r, l, { hash: false }));
      },
    ],
    [
      "writeBlob from memory",
      async () => {
        const c = namespace();
        const b = [0, 1, 2].map(() => randomBlob(17));
        return async () => {
          for (const { bytes, digest } of b) {
            await writeBlob(c, async () => [bytes], { ref: digest, digest, size: bytes.length });
          }
        };
      },
    ],
    [
      "raw grpc-js, prebuilt, 4 in flight",
      async () => {
        const c = namespace();
        const b = [0, 1, 2].map(() => randomBlob(17));
        const calls = b.map(({ bytes, digest }) => rawWriter(c, bytes, digest, 4));
        return async () => {
          for (const call of calls) await call();
        };
      },
    ],
    [
      "registry → writeBlob",
      async () => {
        const c = namespace();
        const { r, ls } = await blobs(await pushImage(layers));
        return async () => {
          for (const l of ls) {
            await writeBlob(c, (offset) => reg.fetchBlob(r, l, { offset, hash: false }), {
              ref: l.digest,
              digest: l.digest,
              size: l.size,
            });
          }
        };
      },
    ],
    [
      "ctr content ingest",
      async () => {
        const c = namespace();
        const b = [0, 1, 2].map(() => randomBlob(17));
        return async () => {
          for (const { bytes, digest } of b) await ctrIngest(c, bytes, digest);
        };
      },
    ],
  ]);
  await cleanup();
}

/** A variant that pulls a fresh image into a fresh namespace. */
const pulling =
  (run: (c: ContainerdClient, ref: string) => Promise<unknown>) =>
  async (): Promise<() => Promise<unknown>> => {
    const c = namespace();
    const ref = await pushImage(layers);
    return () => run(c, ref);
  };

async function split(): Promise<void> {
  await compare(`Fetch, and fetch + unpack, of a ${imageMiB} MiB 3-layer image`, imageMiB, [
    ["berth pull, no unpack", pulling((c, ref) => pull(c, ref, { unpack: false }))],
    ["ctr content fetch", pulling((c, ref) => ctr(c.namespace, "content", "fetch", "--plain-http", ref))],
    ["berth pull", pulling((c, ref) => pull(c, ref))],
    ["ctr images pull", pulling((c, ref) => ctr(c.namespace, "images", "pull", "--plain-http", ref))],
  ]);
  await cleanup();
}

async function downloads(): Promise<void> {
  const fetchOnly = (n: number) => (c: ContainerdClient, ref: string) =>
    pull(c, ref, { unpack: false, maxConcurrentDownloads: n });
  await compare(`Layers downloaded at once, fetch only, ${imageMiB} MiB 3-layer image`, imageMiB, [
    ["berth, 1 download at a time", pulling(fetchOnly(1))],
    ["berth, 3 at a time", pulling(fetchOnly(3))],
    ["ctr content fetch", pulling((c, ref) => ctr(c.namespace, "content", "fetch", "--plain-http", ref))],
  ]);
  await compare(`Layers downloaded at once, cold pull of a ${imageMiB} MiB 3-layer image`, imageMiB, [
    ["berth, 1 download at a time", pulling((c, ref) => pull(c, ref, { maxConcurrentDownloads: 1 }))],
    ["berth, 2 at a time", pulling((c, ref) => pull(c, ref, { maxConcurrentDownloads: 2 }))],
    ["berth, 3 at a time", pulling((c, ref) => pull(c, ref, { maxConcurrentDownloads: 3 }))],
    ["ctr images pull", pulling((c, ref) => ctr(c.namespace, "images", "pull", "--plain-http", ref))],
  ]);
  await cleanup();
}

async function timeline(): Promise<void> {
  console.log(`\n## When each blob of a ${imageMiB} MiB 3-layer pull is in (ms from the start)`);
  for (let i = 0; i < runs; i++) {
    const [ref, twin] = [await pushImage(layers), await pushImage(layers)];
    const marks: string[] = [];
    const t0 = performance.now();
    const at = () => ms(performance.now() - t0);
    for await (const e of pullProgress(namespace(), ref)) {
      if (e.type === "resolved") marks.push(`resolved ${at()}`);
      if (e.type === "blob-done") marks.push(`${e.kind} ${at()}`);
      if (e.type === "layer-unpacked") marks.push(`unpacked ${at()}`);
    }
    const berth = performance.now() - t0;
    const t1 = performance.now();
    await ctr(namespace().namespace, "images", "pull", "--plain-http", twin);
    console.log(`berth ${ms(berth)} ms: ${marks.join(", ")} | ctr ${ms(performance.now() - t1)} ms`);
    await cleanup();
  }
}

async function ab(): Promise<void> {
  const dir = process.env.PROFILE_BEFORE ?? "/tmp/berth-before";
  const before = (await import(
    `${dir}/packages/containerd-client/dist/index.js`
  )) as typeof import("@berth/containerd-client");
  const beforeRoot = new before.ContainerdClient({ address });
  try {
    await compare(`berth before and after, and ctr: cold pull of a ${imageMiB} MiB 3-layer image`, imageMiB, [
      ["before", pulling((c, ref) => before.pull(beforeRoot.withNamespace(c.namespace), ref))],
      ["after", pulling((c, ref) => pull(c, ref))],
      ["ctr images pull", pulling((c, ref) => ctr(c.namespace, "images", "pull", "--plain-http", ref))],
    ]);
  } finally {
    beforeRoot.close();
    await cleanup();
  }
}

try {
  console.log(`# pull profile against ${address}, registry ${registry}; ${runs} runs per variant`);
  // warm the connection and the code paths once
  await pull(namespace(), await pushImage([1]));
  await cleanup();
  const all: Record<string, () => Promise<void>> = { parts, split, downloads, timeline, ab };
  for (const p of phases) await (all[p] ?? (() => Promise.reject(new Error(`unknown phase ${p}`))))();
} finally {
  await cleanup();
  root.close();
}
