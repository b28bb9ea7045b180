// The containerd examples, run as a user would run them (against the package's dist: build it first).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ContainerdClient } from "@berth/containerd-client";
import { afterAll, describe, expect, it } from "vitest";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsx = join(dir, "../node_modules/.bin/tsx");
const namespace = `berth-test-examples-${randomBytes(4).toString("hex")}`;

async function example(file: string): Promise<string> {
  const { stdout } = await promisify(execFile)(tsx, [file], {
    cwd: dir,
    env: { ...process.env, BERTH_EXAMPLE_NAMESPACE: namespace },
    timeout: 60_000,
  });
  return stdout;
}

describe("containerd examples", () => {
  afterAll(async () => {
    const c = ContainerdClient.fromEnv().withNamespace(namespace);
    try {
      for (const { name } of (await c.images.list({})).images) await c.images.delete({ name, sync: true });
      for await (const r of c.content.list({}))
        for (const i of r.info) await c.content.delete({ digest: i.digest });
      for await (const r of c.snapshots.list({ snapshotter: "overlayfs" })) {
        for (const i of r.info)
          await c.snapshots.remove({ snapshotter: "overlayfs", key: i.name }).catch(() => {});
      }
      await c.namespaces.delete({ name: namespace }).catch(() => {});
    } finally {
      c.close();
    }
  });

  it("pull-run pulls with progress and prints the container's output", async () => {
    const out = await example("containerd/pull-run.ts");
    expect(out).toMatch(/pulled .* as sha256:[0-9a-f]{64}/);
    expect(out).toContain("[stdout] hello from");
    expect(out).toContain("[stderr] to-stderr");
    expect(out).toContain("exit code 0");
  });

  it("export-import exports an archive, imports it into another namespace and runs it there", async () => {
    const out = await example("containerd/export-import.ts");
    expect(out).toMatch(/exported .* to \/.*\.tar/);
    expect(out).toMatch(/imported .* as sha256:[0-9a-f]{64}/);
    expect(out).toContain("hello from the imported image");
    // The example removes the namespace it imported into.
    const c = ContainerdClient.fromEnv();
    try {
      const { namespaces } = await c.namespaces.list({});
      expect(namespaces.map((n) => n.name)).not.toContain(`${namespace}-imported`);
    } finally {
      c.close();
    }
  });

  it("exec feeds stdin and reports the exit code", async () => {
    const out = await example("containerd/exec.ts");
    expect(out).toContain("stdout: HELLO FROM STDIN");
    expect(out).toContain("stderr: to-stderr");
    expect(out).toContain("exit code: 3");
  });
});
