// What an app pays at start-up: the time to `import("berth-sdk")` and to its first `connect()`, each in a
// fresh node process (the built packages, as an app loads them), median of BENCH_RUNS (default 15).
// "lazy" is berth-sdk as it is: connect() loads the client of a backend when it tries one. "eager" also
// imports the three client packages up front, which is what importing the umbrella used to do, so the
// difference is what lazy loading saves. Run on demand: `npm run bench:import` (the harness's daemons;
// BERTH_RUNTIME as in the environment, then each backend in turn). Measurements, not tests.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const runs = Number(process.env.BENCH_RUNS ?? 15);
const cwd = fileURLToPath(new URL("..", import.meta.url));

// Runs in the child. performance.now() counts from the process's start, so `ready` includes node's boot.
const child = `
const eager = process.argv[1] === "eager";
const t0 = performance.now();
const berth = await import("berth-sdk");
if (eager)
  await Promise.all([import("@berth/docker-client"), import("@berth/containerd-client"), import("@berth/crio-client")]);
const t1 = performance.now();
const rt = await berth.connect();
const t2 = performance.now();
await rt.close();
console.log(JSON.stringify({ importMs: t1 - t0, connectMs: t2 - t1, readyMs: t2, backend: rt.backend }));
`;

interface Sample {
  importMs: number;
  connectMs: number;
  readyMs: number;
  backend: string;
}

function sample(mode: "lazy" | "eager", backend: string | undefined): Sample {
  const env = { ...process.env };
  if (backend) env.BERTH_RUNTIME = backend;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", child, mode], {
    cwd,
    env,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`child failed (${mode}, ${backend ?? "default"}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as Sample;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

const rows: string[][] = [];
for (const backend of [undefined, "docker", "containerd", "cri"]) {
  const by: Record<"lazy" | "eager", Sample[]> = { lazy: [], eager: [] };
  // One warm-up of each (the file system cache), then lazy and eager alternating, to share the drift.
  sample("lazy", backend);
  sample("eager", backend);
  for (let i = 0; i < runs; i++) {
    by.lazy.push(sample("lazy", backend));
    by.eager.push(sample("eager", backend));
  }
  for (const mode of ["lazy", "eager"] as const) {
    const xs = by[mode];
    rows.push([
      backend ? `BERTH_RUNTIME=${backend}` : `default (${xs[0]?.backend})`,
      mode,
      `${median(xs.map((x) => x.importMs)).toFixed(0)} ms`,
      `${median(xs.map((x) => x.connectMs)).toFixed(0)} ms`,
      `${median(xs.map((x) => x.readyMs)).toFixed(0)} ms`,
    ]);
  }
}

const header = ["connect()", "loading", "import", "first connect()", "process start to connected"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
const line = (cells: string[]) =>
  cells
    .map((c, i) => c.padEnd(widths[i] ?? 0))
    .join("  ")
    .trimEnd();
console.log(`median of ${runs} fresh node processes each, Node ${process.version}`);
console.log(line(header));
console.log(line(widths.map((w) => "-".repeat(w))));
for (const r of rows) console.log(line(r));
