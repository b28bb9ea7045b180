// The Docker examples, run as a user would run them, against Docker and Podman.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsx = join(dir, "../node_modules/.bin/tsx");

async function example(file: string, host: string | undefined): Promise<string> {
  const { stdout } = await promisify(execFile)(tsx, [file], {
    cwd: dir,
    env: { ...process.env, DOCKER_HOST: host },
    timeout: 60_000,
  });
  return stdout;
}

describe.each([
  { name: "docker", host: process.env.DOCKER_HOST },
  { name: "podman", host: process.env.PODMAN_HOST },
])("docker examples on $name", ({ host }) => {
  it("run-logs streams stdout and stderr", async () => {
    const out = await example("docker/run-logs.ts", host);
    expect(out).toContain("[stdout] line 3");
    expect(out).toContain("[stderr] warning 3");
    expect(out).toContain("exit code 0");
  });

  it("exec feeds stdin and reports the exit code", async () => {
    const out = await example("docker/exec.ts", host);
    expect(out).toContain("stdout: HELLO FROM STDIN");
    expect(out).toContain("stderr: to-stderr");
    expect(out).toContain("exit code: 3");
  });

  it("pull-progress pulls with progress", async () => {
    const out = await example("docker/pull-progress.ts", host);
    expect(out).toMatch(/pulled .* as (sha256:)?[0-9a-f]{64}/);
  });

  it("copy copies a file in and out", async () => {
    const out = await example("docker/copy.ts", host);
    expect(out).toContain("stat: greeting.txt 17 bytes, mode 640");
    expect(out).toContain("copied out greeting.txt: hello, container");
  });
});
