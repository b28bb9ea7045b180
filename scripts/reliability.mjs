// `npm run test:reliability`: the reliability and security suite at full strength, one part after the
// other, each timed, then a summary against the 15-minute budget.
//   1. faults (daemon kills, missing and forbidden sockets), bad responses (the fault proxy), registry
//      trust and secrets;
//   2. fuzzing: every parser at BERTH_FUZZ_RUNS cases (default 100,000) per property;
//   3. load and leaks: BERTH_LOAD_CYCLES (default 1,000) run-and-remove cycles at concurrency 16 and 200
//      concurrent follows on each backend of BERTH_RELIABILITY_BACKENDS (default: the three the SDK has:
//      docker, containerd, cri), nothing left behind, asserted strictly (no one else on the daemons).
// The daemons must be up (npm run runtimes:up, or any command under scripts/with-runtimes.mjs).
import { spawnSync } from "node:child_process";

const BUDGET_S = 15 * 60;
const env = process.env;
const runs = env.BERTH_FUZZ_RUNS ?? "100000";
const cycles = env.BERTH_LOAD_CYCLES ?? "1000";
const backends = env.BERTH_RELIABILITY_BACKENDS ?? "docker,containerd,cri";

const parts = [
  {
    name: "faults, bad responses, registry trust, secrets",
    args: ["vitest", "run", "test/faults/", "test/proxy/", "registry-trust.int.test", "secrets.test"],
    env: {},
  },
  {
    name: `fuzz (${Number(runs).toLocaleString("en")} cases per property)`,
    args: ["vitest", "run", "--project", "unit", "--maxWorkers=100%", "fuzz.test"],
    env: { BERTH_FUZZ_RUNS: runs },
  },
  {
    name: `load (${Number(cycles).toLocaleString("en")} cycles per backend: ${backends})`,
    args: ["vitest", "run", "--project", "integration", "test/load/load.int.test.ts"],
    env: { BERTH_LOAD_CYCLES: cycles, BERTH_LOAD_STRICT: "1", BERTH_LOAD_BACKENDS: backends },
  },
];

const results = [];
const t0 = Date.now();
for (const part of parts) {
  console.log(`\n=== reliability: ${part.name}`);
  const t = Date.now();
  const r = spawnSync("npx", part.args, { stdio: "inherit", env: { ...env, ...part.env } });
  results.push({ name: part.name, seconds: (Date.now() - t) / 1000, ok: r.status === 0 });
}
const total = (Date.now() - t0) / 1000;
console.log("\n=== reliability summary");
for (const r of results)
  console.log(`${r.ok ? "passed" : "FAILED"}  ${r.seconds.toFixed(0).padStart(5)} s  ${r.name}`);
console.log(
  `total ${total.toFixed(0)} s (${(total / 60).toFixed(1)} min), budget ${BUDGET_S / 60} min: ${total <= BUDGET_S ? "within" : "OVER"}`,
);
process.exit(results.every((r) => r.ok) ? 0 : 1);
