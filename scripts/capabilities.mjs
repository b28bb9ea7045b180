// The README's capability table, made from what each backend reports in `rt.capabilities` on each daemon
// set that is up (never written by hand). `node scripts/capabilities.mjs` prints it; `--write` puts it
// into README.md between its markers; `--check` fails when README.md differs from what the daemons say.
// Needs the built packages (npm run setup) and the harness's daemons (scripts/with-runtimes.mjs).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { discover } from "berth-sdk";
import { probe, readHarnessEnv, repoRoot, SETS } from "./harness.mjs";

/** Why a backend says no, where the reason is the backend's (not the daemon version's). */
const WHY = {
  ports: "containerd has no networking of its own (no CNI in the client)",
  tmpfs: "CRI mounts have no type",
  bridgeNetwork: "containerd: a private network namespace with loopback only",
  signals: "the CRI can only stop (TERM, then KILL) or kill",
  events: "containerd's CRI has GetContainerEvents from 1.7 (decided per daemon when connecting)",
  execStdin: "CRI: over SPDY (or WebSocket v5), where stdin can be closed",
  pause: "the CRI has no pause",
};
const BACKENDS = ["docker", "podman", "containerd", "cri"];
const BEGIN = "<!-- capabilities:begin (scripts/capabilities.mjs) -->";
const END = "<!-- capabilities:end -->";

/** For each set that answers: backend -> { version, capabilities }. */
async function gather() {
  const sets = [];
  for (const set of SETS) {
    const env = readHarnessEnv(set);
    if (!env || !Object.values(await probe(env)).every(Boolean)) continue;
    const { runtimes } = await discover({ env });
    const byBackend = {};
    for (const { runtime, info } of runtimes) {
      byBackend[runtime.backend] ??= { version: info.version, capabilities: { ...runtime.capabilities } };
      await runtime.close();
    }
    sets.push({ set, byBackend });
  }
  return sets;
}

const short = (v) => /^v?(\d+\.\d+)/.exec(v ?? "")?.[1] ?? "?";

function table(sets) {
  const names = Object.keys(sets[0]?.byBackend.docker?.capabilities ?? {});
  const head = ["capability"];
  for (const b of BACKENDS) for (const s of sets) head.push(`${b} ${short(s.byBackend[b]?.version)}`);
  head.push("why not");
  const rows = names.map((cap) => {
    const cells = [`\`${cap}\``];
    let anyNo = false;
    for (const b of BACKENDS)
      for (const s of sets) {
        const v = s.byBackend[b]?.capabilities[cap];
        if (v === false) anyNo = true;
        cells.push(v === undefined ? "?" : v ? "yes" : "no");
      }
    cells.push(anyNo || cap === "execStdin" ? (WHY[cap] ?? "") : "");
    return cells;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const sets = await gather();
if (sets.length === 0) {
  console.error("capabilities: no daemon set answers (start them: npm run runtimes:up -- --set all)");
  process.exit(1);
}
const made = table(sets);
const mode = process.argv[2];
if (!mode) {
  console.log(made);
  process.exit(0);
}
const readme = join(repoRoot, "README.md");
const text = readFileSync(readme, "utf8");
const a = text.indexOf(BEGIN);
const b = text.indexOf(END);
if (a < 0 || b < a) {
  console.error(`capabilities: README.md has no ${BEGIN} ... ${END} markers`);
  process.exit(1);
}
const current = text.slice(a + BEGIN.length, b).trim();
if (mode === "--write") {
  writeFileSync(readme, `${text.slice(0, a + BEGIN.length)}\n${made}\n${text.slice(b)}`);
  console.log(`capabilities: README.md table written from ${sets.map((s) => s.set).join(" and ")}`);
} else if (mode === "--check") {
  if (sets.length < SETS.length) {
    console.error(`capabilities: only ${sets.map((s) => s.set).join(", ")} up; the table needs every set`);
    process.exit(1);
  }
  if (current !== made) {
    console.error("capabilities: README.md's table differs from what the daemons report:\n");
    console.error(made);
    console.error("\nrun: node scripts/with-runtimes.mjs node scripts/capabilities.mjs --write");
    process.exit(1);
  }
  console.log("capabilities: README.md's table matches what every backend reports on every set");
} else {
  console.error("usage: node scripts/capabilities.mjs [--write | --check]");
  process.exit(2);
}
