import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { daemonSet } from "../../test/support/daemon-set.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("examples/versions.ts", () => {
  it("prints real versions of the three runtimes", async () => {
    const { stdout } = await promisify(execFile)(join(dir, "../node_modules/.bin/tsx"), ["versions.ts"], {
      cwd: dir,
      env: process.env,
      timeout: 30_000,
    });
    const field = (label: string) => new RegExp(`^${label}\\s+(.*)$`, "m").exec(stdout)?.[1] ?? "";
    expect(field("Docker engine")).toMatch(daemonSet.docker);
    expect(field("Docker engine")).toContain(`(API ${daemonSet.dockerApi}, `);
    expect(field("Podman")).toMatch(daemonSet.podman);
    expect(field("containerd")).toMatch(daemonSet.containerd);
    expect(field("containerd")).toContain("(revision");
    expect(field("CRI runtime")).toMatch(/^containerd /);
    expect(field("CRI runtime").slice("containerd ".length)).toMatch(daemonSet.containerd);
    expect(field("CRI runtime")).toContain("(CRI API v1");
  });
});
