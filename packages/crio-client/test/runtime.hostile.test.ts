// CriRuntime against a runtime whose answers are hostile: paths it reports must not make the adapter
// delete (or read) outside the log root it was configured with.
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  ContainerState,
  type CriClient,
  CriRuntime,
  LOG_DIRECTORY_ANNOTATION,
  OWNED_POD_LABEL,
  podLogDirName,
} from "../src/index.js";

const base = mkdtempSync(join(tmpdir(), "berth-cri-hostile-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A runtime that reports `logPath` for every container, in a pod of its own reporting `logDirectory`. */
function hostileRuntime(logRoot: string, answer: { logPath: string; logDirectory?: string }): CriRuntime {
  const metadata = { namespace: "berth", name: "victim", uid: "u1", attempt: 0 };
  const client = {
    containerStatus: async (id: string) => ({
      status: { id, state: ContainerState.CONTAINER_EXITED, logPath: answer.logPath },
      info: {},
    }),
    listContainers: async (filter: { id?: string }) =>
      filter.id ? [{ id: filter.id, podSandboxId: answer.logDirectory ? "pod1" : "" }] : [],
    removeContainer: async () => {},
    stopContainer: async () => {},
    podSandboxStatus: async () => ({
      status: {
        metadata,
        labels: { [OWNED_POD_LABEL]: "true" },
        annotations: { [LOG_DIRECTORY_ANNOTATION]: answer.logDirectory },
      },
    }),
    stopPodSandbox: async () => {},
    removePodSandbox: async () => {},
  } as unknown as CriClient;
  return new CriRuntime(client, { logRoot });
}

function setup(name: string) {
  const root = join(base, name, "logs");
  const outside = join(base, name, "outside");
  mkdirSync(join(root, "pod"), { recursive: true });
  mkdirSync(outside, { recursive: true });
  const victim = join(outside, "victim.txt");
  writeFileSync(victim, "precious");
  return { root, outside, victim };
}

describe("remove() with a hostile runtime's log paths", () => {
  it("deletes the container's log file when it lies inside the log root", async () => {
    const { root } = setup("inside");
    const log = join(root, "pod", "c.log");
    writeFileSync(log, "x");
    await hostileRuntime(root, { logPath: log }).remove("c1");
    expect(existsSync(log)).toBe(false);
  });

  it("leaves a file outside the log root alone, however the path reaches it", async () => {
    const { root, outside, victim } = setup("outside");
    // Plainly outside, through "..", and through a directory symlink inside the root.
    symlinkSync(outside, join(root, "pod", "escape"));
    for (const logPath of [
      victim,
      join(root, "pod", "..", "..", "outside", "victim.txt"),
      join(root, "pod", "escape", "victim.txt"),
    ]) {
      await hostileRuntime(root, { logPath }).remove("c1");
      expect(existsSync(victim), logPath).toBe(true);
    }
  });

  it("does not follow a log path that is itself a symlink out of the root", async () => {
    const { root, victim } = setup("link");
    const link = join(root, "pod", "c.log");
    symlinkSync(victim, link);
    await hostileRuntime(root, { logPath: link }).remove("c1");
    expect(existsSync(victim)).toBe(true);
  });

  it("removes a pod's log directory only inside the log root", async () => {
    const { root, outside } = setup("poddir");
    const name = podLogDirName({ namespace: "berth", name: "victim", uid: "u1" });
    const elsewhere = join(outside, name);
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, "keep.txt"), "precious");
    await hostileRuntime(root, { logPath: join(root, "pod", "c.log"), logDirectory: elsewhere }).remove("c1");
    expect(existsSync(join(elsewhere, "keep.txt"))).toBe(true);
    // A symlink in the root named for the pod, pointing out: the link may go, the target stays.
    symlinkSync(elsewhere, join(root, name));
    await hostileRuntime(root, {
      logPath: join(root, "pod", "c.log"),
      logDirectory: join(root, name),
    }).remove("c1");
    expect(existsSync(join(elsewhere, "keep.txt"))).toBe(true);
    // The real thing still goes.
    rmSync(join(root, name));
    mkdirSync(join(root, name));
    await hostileRuntime(root, {
      logPath: join(root, "pod", "c.log"),
      logDirectory: join(root, name),
    }).remove("c1");
    expect(existsSync(join(root, name))).toBe(false);
  });
});
