// The app of the consumer test (scripts/consumer-test.mjs): copied into a fresh app outside the repository
// that has only the packed tarballs installed, compiled there under strict settings, and run against the
// harness's daemons. It uses berth as a user would and fails loudly on anything a user would trip on.
import { createRequire } from "node:module";
import { DockerClient } from "@berth/docker-client";
import { type BackendName, discover, isBerthError, UnsupportedError } from "berth-sdk";

let failed = false;
function check(ok: boolean, what: string, detail = ""): void {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`);
  if (!ok) failed = true;
}

// ESM only, but Node >= 20.19 loads ESM with require() (engines says >=20.19.0).
const required: { connect?: unknown } = createRequire(import.meta.url)("berth-sdk");
check(typeof required.connect === "function", `require("berth-sdk") on Node ${process.version}`);

// ssh2 is an optional peer dependency, not installed here: ssh:// fails on first use, saying what to do.
const viaSsh = new DockerClient({ host: "ssh://nobody@127.0.0.1:1" });
const sshError: unknown = await viaSsh.system.ping().catch((err: unknown) => err);
await viaSsh.close();
check(
  sshError instanceof UnsupportedError && /npm install ssh2/.test(sshError.message),
  "ssh:// without ssh2 installed is an UnsupportedError naming it",
  sshError instanceof Error ? `${sshError.name}: ${sshError.message}` : String(sshError),
);

// Every backend the environment configures must answer and run a container.
const env = process.env;
const expected: BackendName[] = [
  ...(env.DOCKER_HOST ? (["docker"] as const) : []),
  ...(env.CONTAINER_HOST || env.PODMAN_HOST ? (["podman"] as const) : []),
  ...(env.CONTAINERD_ADDRESS ? (["containerd"] as const) : []),
  ...(env.CONTAINER_RUNTIME_ENDPOINT ? (["cri"] as const) : []),
];
const image = env.BERTH_TEST_IMAGE ?? "busybox:latest";
// A generous probe: Podman's API service can take seconds to answer its first call on a busy machine.
const { runtimes, attempts } = await discover({ probeTimeout: 20_000 });
check(runtimes.length > 0, "discover() finds a runtime", `${runtimes.length} found`);
for (const backend of expected) {
  const found = runtimes.find((r) => r.runtime.backend === backend);
  if (!found) {
    const why = attempts.filter((a) => a.backend === backend).map((a) => a.error.message);
    check(false, `${backend} answers`, why.join("; "));
    continue;
  }
  try {
    const { exitCode, stdout } = await found.runtime.run(
      { image, command: ["echo", `hello from ${backend}`] },
      { signal: AbortSignal.timeout(120_000) },
    );
    const out = Buffer.from(stdout).toString().trim();
    check(
      exitCode === 0 && out === `hello from ${backend}`,
      `${backend} (${found.info.name} ${found.info.version}) runs ${image}`,
      `exit ${exitCode}, "${out}"`,
    );
  } catch (err) {
    check(false, `${backend} runs ${image}`, isBerthError(err) ? `${err.code}: ${err.message}` : String(err));
  }
}
for (const { runtime } of runtimes) await runtime.close();
process.exit(failed ? 1 : 0);
