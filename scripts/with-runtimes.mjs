// `node scripts/with-runtimes.mjs CMD ARGS...`: run a command with the harness's runtimes up and their
// env set, starting them first when none answer and stopping afterwards what this run started
// (BERTH_KEEP_RUNTIMES=1 leaves them running).
import { spawnSync } from "node:child_process";
import { ensureRuntimes } from "./harness.mjs";

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error("usage: node scripts/with-runtimes.mjs CMD [ARGS...]");
  process.exit(2);
}
let runtimes;
try {
  runtimes = await ensureRuntimes();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
const r = spawnSync(cmd, args, { stdio: "inherit", env: { ...process.env, ...runtimes.env } });
if (runtimes.started && process.env.BERTH_KEEP_RUNTIMES !== "1") await runtimes.stop();
process.exit(r.status ?? 1);
