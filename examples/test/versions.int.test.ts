import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("examples/versions.ts", () => {
  it("prints real versions of the three runtimes", async () => {
    const { stdout } = await promisify(execFile)(join(dir, "../node_modules/.bin/tsx"), ["versions.ts"], {
      cwd: dir,
      env: process.env,
      timeout: 30_000,
    });
    expect(stdout).toMatch(/Docker engine\s+20\.10\.\d+\S* \(API 1\.41/);
    expect(stdout).toMatch(/containerd\s+1\.6\.\d+\S* \(revision/);
    expect(stdout).toMatch(/CRI runtime\s+containerd 1\.6\.\d+\S* \(CRI API v1/);
  });
});
