// The Runtime examples, run as a user would run them, on each of the four backends (BERTH_RUNTIME picks).
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsx = join(dir, "../node_modules/.bin/tsx");

async function example(file: string, env: Record<string, string | undefined> = {}): Promise<string> {
  const { stdout } = await promisify(execFile)(tsx, [file], {
    cwd: dir,
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return stdout;
}

describe("run-everywhere", () => {
  it("runs the same container through all four backends and prints a table", async () => {
    const out = await example("runtime/run-everywhere.ts");
    const rows = out.split("\n").filter((l) => /^(docker|podman|containerd|cri)\s/.test(l));
    expect(rows.map((r) => r.split(/\s+/)[0]).sort()).toEqual(["containerd", "cri", "docker", "podman"]);
    for (const row of rows) expect(row).toMatch(/\s0\s+hello from berth, uid 0, Linux\s+\d+ ms$/);
  });
});

describe.each(["docker", "podman", "containerd", "cri"])("Runtime examples on %s", (backend) => {
  const env = { BERTH_RUNTIME: backend };

  it("logs-follow prints lines as they come, with times", async () => {
    const out = await example("runtime/logs-follow.ts", env);
    for (let i = 1; i <= 5; i++)
      expect(out).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+ stdout tick ${i}$`, "m"));
    expect(out).toMatch(/ stderr done$/m);
    expect(out).toContain("exit code 0");
  });

  it("exec feeds stdin and keeps the streams apart", async () => {
    const out = await example("runtime/exec.ts", env);
    expect(out).toContain('tr: exit 0, stdout "SHOUT THIS"');
    expect(out).toContain('sh: exit 3, stdout "in / as 0", stderr "oops"');
  });

  it("pull-progress pulls with progress", async () => {
    const out = await example("runtime/pull-progress.ts", env);
    expect(out).toMatch(
      new RegExp(`^pulled \\S+ with ${backend}: \\d+ items, [\\d.]+ MiB reported, \\d+ ms$`, "m"),
    );
  });

  it("cleanup-by-label finds everything a job left and removes it", async () => {
    const out = await example("runtime/cleanup-by-label.ts", env);
    expect(out).toMatch(/found 4 containers labelled .*: created, exited, running, running/);
    expect(out).toContain("removed 4; left now: 0");
  });
});
