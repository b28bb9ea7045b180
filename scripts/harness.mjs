// Finds the local runtimes the harness (scripts/runtimes/up.sh) started, and starts them when the
// env file names none that answer. Used by the vitest global setup and scripts/with-runtimes.mjs.
// Two daemon sets exist (scripts/runtimes/versions.sh): "debian12" (the default) and "current";
// BERTH_RUNTIME_SET picks one, and each has its own env file, <state>/env.<set>.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const stateDir = resolve(process.env.BERTH_RUNTIMES_DIR ?? join(repoRoot, ".runtimes"));
export const SETS = ["debian12", "current"];

/** The daemon set this process asks for: BERTH_RUNTIME_SET, else debian12. */
export function wantedSet(env = process.env) {
  const set = env.BERTH_RUNTIME_SET || "debian12";
  if (!SETS.includes(set))
    throw new Error(`berth: unknown BERTH_RUNTIME_SET "${set}" (${SETS.join(" or ")})`);
  return set;
}

export const envFileOf = (set) => join(stateDir, `env.${set}`);

/** KEY=VALUE lines of a set's env file, or undefined when there is none. */
export function readHarnessEnv(set = wantedSet()) {
  const envFile = envFileOf(set);
  if (!existsSync(envFile)) return undefined;
  const env = {};
  for (const line of readFileSync(envFile, "utf8").split("\n")) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

const socketPath = (address) => address?.replace(/^unix:\/\//, "");

function httpOk(options) {
  return new Promise((done) => {
    const req = request({ ...options, timeout: 2000 }, (res) => {
      res.resume();
      done(res.statusCode !== undefined && res.statusCode < 500);
    });
    req.on("error", () => done(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

function socketAccepts(path) {
  return new Promise((done) => {
    const s = connect(path);
    s.setTimeout(2000, () => s.destroy());
    s.on("connect", () => {
      s.destroy();
      done(true);
    });
    s.on("error", () => done(false));
    s.on("close", () => done(false));
  });
}

/** Which of the harness's runtimes answer, by name. */
export async function probe(env) {
  const [host, port] = (env.BERTH_REGISTRY ?? "").split(":");
  const results = await Promise.all([
    env.DOCKER_HOST ? httpOk({ socketPath: socketPath(env.DOCKER_HOST), path: "/_ping" }) : false,
    env.PODMAN_HOST ? httpOk({ socketPath: socketPath(env.PODMAN_HOST), path: "/_ping" }) : false,
    env.CONTAINERD_ADDRESS ? socketAccepts(socketPath(env.CONTAINERD_ADDRESS)) : false,
    host ? httpOk({ host, port: Number(port), path: "/v2/" }) : false,
  ]);
  return { docker: results[0], podman: results[1], containerd: results[2], registry: results[3] };
}

function runScript(name, args = []) {
  const r = spawnSync("bash", [join(repoRoot, "scripts/runtimes", name), ...args], { stdio: "inherit" });
  return r.status ?? 1;
}

/**
 * Make sure the runtimes answer. Returns their env, whether this call started them, and stop() which
 * brings down only what this call started.
 */
export async function ensureRuntimes({ log = (m) => console.error(m), set = wantedSet() } = {}) {
  let env = readHarnessEnv(set);
  if (env) {
    const up = await probe(env);
    if (Object.values(up).every(Boolean)) {
      return { env, started: false, stop: async () => {} };
    }
  }
  // down.sh stops every set: when another set already runs, leave it all up afterwards
  const othersUp = SETS.filter((s) => s !== set && readHarnessEnv(s) !== undefined);
  log(`berth: starting local runtimes, set ${set} (state in ${stateDir})...`);
  if (runScript("up.sh", ["--set", set]) !== 0)
    throw new Error("berth: the runtime harness failed to start (see above)");
  env = readHarnessEnv(set);
  if (!env) throw new Error(`berth: the runtime harness wrote no ${envFileOf(set)}`);
  return {
    env,
    started: true,
    stop: async () => {
      if (othersUp.length > 0) {
        log(`berth: leaving the runtimes up (set ${othersUp.join(", ")} was already running)`);
        return;
      }
      log("berth: stopping the local runtimes this run started...");
      runScript("down.sh");
    },
  };
}
