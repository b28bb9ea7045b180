// `npm run test:reliability`: the reliability and security suite at full strength, one part after the
// other, each timed, then a summary against the 15-minute budget.
//   1. faults (daemon kills, missing and forbidden sockets), bad responses (the fault proxy), registry
//      trust and secrets;
//   2. fuzzing: every parser at BERTH_FUZZ_RUNS cases (default 100,000) per property; then the Runtime
//      surface as a JavaScript caller could misuse it, BERTH_SURFACE_FUZZ_RUNS (default 10,000) cases per
//      method on each of docker, podman, containerd, cri (test/fuzz/runtime-surface.ts; ~30 s);
//   3. hostile input: every *hostile* test (caps, shapes, paths, floods, records, images) and the memory
//      bounds against 256 MiB streams, known_hosts, image-root and log-root paths; counted from vitest's
//      JSON report, with the peak growth from the `hostile-input:` lines (see hostileSummary);
//   4. load and leaks: BERTH_LOAD_CYCLES (default 1,000) run-and-remove cycles at concurrency 16 and 200
//      concurrent follows on each backend of BERTH_RELIABILITY_BACKENDS (default: the three the SDK has:
//      docker, containerd, cri), nothing left behind, asserted strictly (no one else on the daemons).
// Each part's output goes through as it comes; the figure lines the tests print (faults:, bad responses:,
// registry-trust:, secrets:, fuzz:, load:, hostile-input:) are gathered and summed up at the end.
// The daemons must be up (npm run runtimes:up, or any command under scripts/with-runtimes.mjs).
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BUDGET_S = 15 * 60;
/** Where the hostile-input part's vitest JSON report goes: its counts are read from it. */
const HOSTILE_REPORT = join(tmpdir(), `berth-reliability-hostile-${process.pid}.json`);
const env = process.env;
const runs = env.BERTH_FUZZ_RUNS ?? "100000";
const surfaceRuns = env.BERTH_SURFACE_FUZZ_RUNS ?? "10000";
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
    name: `runtime surface fuzz (${Number(surfaceRuns).toLocaleString("en")} cases per method per backend)`,
    args: ["vitest", "run", "--project", "integration", "--maxWorkers=100%", "test/fuzz/"],
    env: { BERTH_SURFACE_FUZZ_RUNS: surfaceRuns },
  },
  {
    name: "hostile input (attacks, memory bounds over 256 MiB streams)",
    // test/proxy/ (the tampering registry on every backend) runs in the first part.
    args: [
      ...[
        "vitest",
        "run",
        "hostile",
        "registry-trust.test",
        "known-hosts.test",
        "in-root.test",
        "log-root.test",
      ],
      // One file at a time: the memory bounds sample RSS and collect every 50 ms, which two files
      // streaming 256 MiB each on two cores stretch (a peak of 32.2 MiB was seen in parallel, 6-16 alone).
      ...["--maxWorkers=1", "--exclude", "test/proxy/**", "--reporter=default", "--reporter=json"],
      `--outputFile.json=${HOSTILE_REPORT}`,
    ],
    env: {},
  },
  {
    name: `load (${Number(cycles).toLocaleString("en")} cycles per backend: ${backends})`,
    args: ["vitest", "run", "--project", "integration", "test/load/load.int.test.ts"],
    env: { BERTH_LOAD_CYCLES: cycles, BERTH_LOAD_STRICT: "1", BERTH_LOAD_BACKENDS: backends },
  },
];

/** Figure lines the tests printed, without terminal colours, in order. */
const figures = [];
const FIGURE = /^(faults|bad responses|registry-trust|secrets|fuzz|load|hostile-input): /;
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
  out.push(...surfaceSummary(pick("fuzz: runtime surface: ")));
  for (const l of pick("load: ").filter((l) => /^load: [a-z]+: \d+ cycles/.test(l))) out.push(l);
  out.push(...hostileSummary(pick("hostile-input: "), pick("registry-trust: ")));
  return out;
}

/** The runtime-surface fuzz's lines (one per backend) as one: backends, methods and the counts, summed. */
function surfaceSummary(lines) {
  const rows = lines
    .map((l) =>
      /: ([a-z]+): (\d+) methods, (\d+) cases, (\d+) untyped, (\d+) hangs, (\d+) left behind/.exec(l),
    )
    .filter(Boolean);
  if (!rows.length) return [];
  const sum = (i) => rows.reduce((n, m) => n + Number(m[i]), 0);
  return [
    `fuzz: runtime surface: ${rows.length} backends (${rows.map((m) => m[1]).join(", ")}), ` +
      `${Math.max(...rows.map((m) => Number(m[2])))} methods, ${sum(3).toLocaleString("en")} cases, ` +
      `${sum(4)} untyped, ${sum(5)} hangs, ${sum(6)} left behind`,
  ];
}

/** Which backend a hostile-input test file attacks, by its package. */
const HOSTILE_AREAS = [
  ["docker-client", "docker/podman client", "docker"],
  ["containerd-client", "containerd", "containerd"],
  ["crio-client", "cri", "cri"],
  ["runtime-core", "shared", undefined],
];
const BACKEND_ORDER = ["docker", "podman", "containerd", "cri"];
/** A raw JavaScript error named in a failure: an attack that escaped the typed errors. */
const RAW_ERROR = /\b(TypeError|RangeError|SyntaxError|ReferenceError)\b/;

/**
 * The hostile-input lines as printed, then one line: the attacks (tests of the hostile part) refused or
 * held to their bounds, by backend, from vitest's JSON report; the tampered-layer pulls of the first part
 * on each backend; the peak memory growth over the `hostile-input:` lines (RSS or live heap, whichever is
 * larger); and the untyped errors (lines whose outcome is UNTYPED, failures naming a raw JS error).
 */
function hostileSummary(lines, trust) {
  let report;
  try {
    report = JSON.parse(readFileSync(HOSTILE_REPORT, "utf8"));
    rmSync(HOSTILE_REPORT, { force: true });
  } catch {
    return lines.length
      ? [...lines, "hostile input: no vitest report (the part did not run to its end)"]
      : [];
  }
  const byArea = new Map();
  let passed = 0;
  let failed = 0;
  let untyped = lines.filter((l) => l.includes("UNTYPED")).length;
  for (const file of report.testResults ?? []) {
    const area = HOSTILE_AREAS.find(([pkg]) => file.name.includes(`/packages/${pkg}/`))?.[1] ?? "other";
    for (const t of file.assertionResults ?? []) {
      if (t.status === "passed") {
        passed++;
        byArea.set(area, (byArea.get(area) ?? 0) + 1);
      } else if (t.status === "failed") {
        failed++;
        if ((t.failureMessages ?? []).some((m) => RAW_ERROR.test(m))) untyped++;
      }
    }
  }
  const areas = HOSTILE_AREAS.filter(([, a]) => byArea.has(a)).map(([, a]) => `${a} ${byArea.get(a)}`);
  const tampered = trust.filter((l) => /^registry-trust: [a-z]+ tampered layer/.test(l));
  if (byArea.has("other")) areas.push(`other ${byArea.get("other")}`);
  if (tampered.length) areas.push(`tampered-layer pulls ${tampered.length}`);
  const backends = new Set(HOSTILE_AREAS.filter(([, a, b]) => b && byArea.has(a)).map(([, , b]) => b));
  for (const l of tampered) backends.add(l.split(" ")[1]);
  const growth = lines.flatMap((l) =>
    [...l.matchAll(/(?:rss|heap) \+([\d.]+) MiB/g)].map((m) => Number(m[1])),
  );
  const peak = growth.length ? Math.max(...growth) : Number.NaN;
  const mib = process.env.BERTH_HOSTILE_MIB ?? "256";
  return [
    ...lines,
    `hostile input: ${passed + tampered.length} attacks refused with typed errors or held to their ` +
      `bounds across ${BACKEND_ORDER.filter((b) => backends.has(b)).join(", ")} (${areas.join(", ")}); peak memory growth ` +
      `${peak.toFixed(1)} MiB (bound 32 MiB) over ${mib} MiB streams at ${lines.length} surfaces; ` +
      `${untyped} untyped errors${failed ? `; ${failed} FAILED` : ""}`,
  ];
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
