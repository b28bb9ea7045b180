// `npm run test:reliability`: the reliability and security suite at full strength, one part after the
// other, each timed, then a summary against the 15-minute budget.
//   1. faults (daemon kills, missing and forbidden sockets), bad responses (the fault proxy), registry
//      trust and secrets;
//   2. fuzzing: every parser at BERTH_FUZZ_RUNS cases (default 100,000) per property;
//   3. load and leaks: BERTH_LOAD_CYCLES (default 1,000) run-and-remove cycles at concurrency 16 and 200
//      concurrent follows on each backend of BERTH_RELIABILITY_BACKENDS (default: the three the SDK has:
//      docker, containerd, cri), nothing left behind, asserted strictly (no one else on the daemons).
// Each part's output goes through as it comes; the figure lines the tests print (faults:, bad responses:,
// registry-trust:, secrets:, fuzz:, load:) are gathered and summed up at the end.
// The daemons must be up (npm run runtimes:up, or any command under scripts/with-runtimes.mjs).
import { spawn } from "node:child_process";

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

/** Figure lines the tests printed, without terminal colours, in order. */
const figures = [];
const FIGURE = /^(faults|bad responses|registry-trust|secrets|fuzz|load): /;
// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal colour codes
const plain = (line) => line.replace(/\x1b\[[0-9;]*m/g, "").trim();
function gather(line) {
  const l = plain(line);
  if (FIGURE.test(l) && !figures.includes(l)) figures.push(l);
}

/** Runs one part, passing its output through and gathering figure lines; resolves to its success. */
function runPart(part) {
  return new Promise((resolve) => {
    const child = spawn("npx", part.args, {
      stdio: ["inherit", "pipe", "inherit"],
      env: { ...env, ...part.env },
    });
    let rest = "";
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      const lines = (rest + chunk.toString("utf8")).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) gather(line);
    });
    child.on("error", (err) => {
      console.error(`reliability: ${part.name}: ${err.message}`);
      resolve(false);
    });
    child.on("close", (code) => {
      gather(rest);
      resolve(code === 0);
    });
  });
}

/** The figures, summed where they are counts: fuzz cases, secrets grepped, load cycles and leaks. */
function figureSummary() {
  const out = [];
  const pick = (prefix) => figures.filter((l) => l.startsWith(prefix));
  for (const l of [...pick("faults: "), ...pick("bad responses: "), ...pick("registry-trust: ")]) out.push(l);
  let errs = 0;
  let streams = 0;
  let leaks = 0;
  const secrets = pick("secrets: ");
  for (const l of secrets) {
    const m = /(\d+) error objects, (\d+) streams grepped, (\d+) leaks/.exec(l);
    if (!m) continue;
    errs += Number(m[1]);
    streams += Number(m[2]);
    leaks += Number(m[3]);
  }
  if (secrets.length) {
    out.push(
      `secrets: ${secrets.length} checks, ${errs} error objects and ${streams} streams grepped, ${leaks} leaks`,
    );
  }
  const fuzz = pick("fuzz: ")
    .map((l) => /^fuzz: (.+): (\d+) cases, (\d+) failures/.exec(l))
    .filter(Boolean);
  if (fuzz.length) {
    const cases = fuzz.map((m) => Number(m[2]));
    const failures = fuzz.reduce((n, m) => n + Number(m[3]), 0);
    const sum = cases.reduce((a, b) => a + b, 0);
    out.push(
      `fuzz: ${fuzz.length} properties, ${sum.toLocaleString("en")} cases, ${failures} failures ` +
        `(fewest in one property: ${Math.min(...cases).toLocaleString("en")})`,
    );
  }
  for (const l of pick("load: ").filter((l) => /^load: [a-z]+: \d+ cycles/.test(l))) out.push(l);
  return out;
}

const results = [];
const t0 = Date.now();
for (const part of parts) {
  console.log(`\n=== reliability: ${part.name}`);
  const t = Date.now();
  const ok = await runPart(part);
  results.push({ name: part.name, seconds: (Date.now() - t) / 1000, ok });
}
const total = (Date.now() - t0) / 1000;
console.log("\n=== reliability figures");
for (const l of figureSummary()) console.log(l);
console.log("\n=== reliability summary");
for (const r of results)
  console.log(`${r.ok ? "passed" : "FAILED"}  ${r.seconds.toFixed(0).padStart(5)} s  ${r.name}`);
console.log(
  `total ${total.toFixed(0)} s (${(total / 60).toFixed(1)} min), budget ${BUDGET_S / 60} min: ${total <= BUDGET_S ? "within" : "OVER"}`,
);
process.exit(results.every((r) => r.ok) ? 0 : 1);
