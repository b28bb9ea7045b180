// The CRI example, run as a user would run it (tsx, against the built package), on containerd's CRI.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { daemonSet } from "../../test/support/daemon-set.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsx = join(dir, "../node_modules/.bin/tsx");

describe("CRI examples", () => {
  it("pod-exec-logs runs a pod, execs into it and reads its logs", async () => {
    const { stdout } = await promisify(execFile)(tsx, ["cri/pod-exec-logs.ts"], {
      cwd: dir,
      env: process.env,
      timeout: 60_000,
    });
    expect(/^runtime: containerd (\S+) \(CRI v1\)$/m.exec(stdout)?.[1]).toMatch(daemonSet.containerd);
    expect(stdout).toMatch(
      new RegExp(`pod [0-9a-f]{12} ip ${daemonSet.criSubnet.replaceAll(".", "\\.")}\\.\\d+`),
    );
    expect(stdout).toContain("exec stdout: hello, CRI");
    expect(stdout).toContain("exec exit code: 3");
    expect(stdout).toContain("log [stdout] hello from the container");
    expect(stdout).toContain("log [stderr] a warning");
    expect(stdout).toContain("pod removed");
  }, 90_000);
});
