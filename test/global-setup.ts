// Integration tests talk to real daemons: bring the harness's runtimes up when none answer, hand their
// addresses to the test workers through the environment, and stop afterwards only what we started.
import { ensureRuntimes } from "../scripts/harness.mjs";

export default async function setup(): Promise<() => Promise<void>> {
  const runtimes = await ensureRuntimes();
  Object.assign(process.env, runtimes.env);
  console.log(`berth: integration tests on daemon set "${runtimes.env.BERTH_RUNTIME_SET ?? "debian12"}"`);
  return () => runtimes.stop();
}
