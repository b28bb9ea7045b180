// `node scripts/with-runtimes.mjs [--each-set] CMD ARGS...`: run a command with the harness's runtimes up
// and their env set, starting them first when none answer and stopping afterwards what this run started
// (BERTH_KEEP_RUNTIMES=1 leaves them running). BERTH_RUNTIME_SET picks the daemon set (debian12 by
// default). With --each-set the command runs once per daemon set that is up (a heading names each).
import { spawnSync } from "node:child_process";
import { ensureRuntimes, probe, readHarnessEnv, SETS, wantedSet } from "./harness.mjs";

let args = process.argv.slice(2);
const eachSet = args[0] === "--each-set";
if (eachSet) args = args.slice(1);
const [cmd, ...rest] = args;
if (!cmd) {
  console.error("usage: node scripts/with-runtimes.mjs [--each-set] CMD [ARGS...]");
  process.exit(2);
}
let runtimes;
try {
  runtimes = await ensureRuntimes();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}

/** The sets to run on: the one just ensured, and with --each-set every other that answers too. */
async function setsToRun() {
  const first = wantedSet();
  const runs = [{ set: first, env: runtimes.env }];
  if (!eachSet) return runs;
  for (const set of SETS) {
    if (set === first) continue;
    const env = readHarnessEnv(set);
    if (env && Object.values(await probe(env)).every(Boolean)) runs.push({ set, env });
  }
  return runs.sort((a, b) => SETS.indexOf(a.set) - SETS.indexOf(b.set));
}

let status = 0;
const runs = await setsToRun();
for (const { set, env } of runs) {
  if (eachSet && runs.length > 1) console.log(`\n== daemon set: ${set}`);
  const r = spawnSync(cmd, rest, { stdio: "inherit", env: { ...process.env, ...env } });
  status ||= r.status ?? 1;
}
if (runtimes.started && process.env.BERTH_KEEP_RUNTIMES !== "1") await runtimes.stop();
process.exit(status);
