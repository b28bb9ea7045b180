// The same container through every backend that answers: Docker, Podman, containerd and the CRI.
// Backends come from the environment (DOCKER_HOST, CONTAINER_HOST/PODMAN_HOST, CONTAINERD_ADDRESS,
// CONTAINER_RUNTIME_ENDPOINT) and the default sockets; `npm run demo` starts local ones when none is set.
import { type ContainerSpec, discover } from "berth-sdk";

const image = process.env.BERTH_EXAMPLE_IMAGE ?? process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const spec: ContainerSpec = {
  image,
  command: ["sh", "-c", 'echo "$GREETING, uid $(id -u), $(uname -s)"'],
  env: { GREETING: "hello from berth" },
  labels: { "berth.example": "run-everywhere" },
};

const { runtimes, attempts } = await discover();
if (runtimes.length === 0) {
  console.error("No container runtime answered. Tried:");
  for (const a of attempts)
    console.error(`  ${a.backend} at ${a.endpoint} (${a.source}): ${a.error.message}`);
  process.exit(1);
}

const rows: string[][] = [];
let failed = 0;
for (const { runtime, info } of runtimes) {
  const t0 = performance.now();
  try {
    const res = await runtime.run(spec, { signal: AbortSignal.timeout(120_000) });
    const output = Buffer.from(res.stdout).toString().trim().split("\n").at(-1) ?? "";
    rows.push([
      runtime.backend,
      `${info.name} ${info.version}`,
      String(res.exitCode),
      output,
      `${Math.round(performance.now() - t0)} ms`,
    ]);
    if (res.exitCode !== 0) failed++;
  } catch (err) {
    failed++;
    rows.push([
      runtime.backend,
      `${info.name} ${info.version}`,
      "error",
      (err as Error).message,
      `${Math.round(performance.now() - t0)} ms`,
    ]);
  } finally {
    await runtime.close();
  }
}

const header = ["backend", "runtime", "exit", "output", "time"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
const line = (cells: string[]) =>
  cells
    .map((c, i) => c.padEnd(widths[i] ?? 0))
    .join("  ")
    .trimEnd();
console.log(line(header));
console.log(line(widths.map((w) => "-".repeat(w))));
for (const r of rows) console.log(line(r));
const missing = attempts.filter((a) => !runtimes.some((r) => r.runtime.backend === a.backend));
if (missing.length) {
  console.log(
    `\nnot reachable: ${[...new Set(missing.map((a) => a.backend))].join(", ")} (set BERTH_DEBUG=1 for why)`,
  );
  if (process.env.BERTH_DEBUG)
    for (const a of missing) console.log(`  ${a.backend} at ${a.endpoint}: ${a.error.message}`);
}
process.exit(failed ? 1 : 0);
