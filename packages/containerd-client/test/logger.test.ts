// bin/logger.mjs on its own, started the way containerd's shim starts it: stdout on fd 3, stderr on fd 4,
// a ready pipe on fd 5, and the write ends kept open (as the shim keeps them until the task is deleted).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { LOGGER_SCRIPT, TaskLog } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "berth-logger-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function startLogger(cwd = dir): Promise<{
  child: ChildProcess;
  log: TaskLog;
  stdout: Writable;
  stderr: Writable;
  exited: Promise<number | null>;
}> {
  const log = new TaskLog(join(dir, `c${++n}.log`));
  await log.prepareStart();
  const child = spawn(process.execPath, [LOGGER_SCRIPT, log.path], {
    cwd,
    env: { CONTAINER_ID: `c${n}`, CONTAINER_NAMESPACE: "test" },
    stdio: ["ignore", "ignore", "ignore", "pipe", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  // Ready once fd 5 is closed.
  await new Promise<void>((resolve) =>
    (child.stdio[5 as number] as unknown as Readable).on("close", resolve).resume(),
  );
  return {
    child,
    log,
    stdout: child.stdio[3] as Writable,
    stderr: child.stdio[4] as Writable,
    exited,
  };
}

const write = (w: Writable, data: string | Uint8Array) =>
  new Promise<void>((resolve, reject) => w.write(data, (err) => (err ? reject(err) : resolve())));

async function readAll(log: TaskLog): Promise<{ stdout: Buffer; stderr: Buffer }> {
  const out = { stdout: [] as Uint8Array[], stderr: [] as Uint8Array[] };
  for await (const e of log.read({})) out[e.stream].push(e.data);
  return { stdout: Buffer.concat(out.stdout), stderr: Buffer.concat(out.stderr) };
}

describe("logger.mjs", () => {
  it("writes CRI records and marks done when asked to drain, with the pipes still open", async () => {
    const { log, stdout, stderr, exited, child } = await startLogger();
    await write(stdout, "one\ntw");
    await new Promise((r) => setTimeout(r, 150)); // read apart: "tw" becomes a partial record
    await write(stderr, "err\n");
    await write(stdout, "o\n");
    await write(stdout, Buffer.from([0, 1, 255]));
    await new Promise((r) => setTimeout(r, 100));
    expect(await log.isDone()).toBe(false);
    expect(await log.settle(5_000)).toBe(true);
    expect(await exited).toBe(0);
    const got = await readAll(log);
    expect([...got.stdout]).toEqual([...Buffer.from("one\ntwo\n"), 0, 1, 255]);
    expect(got.stderr.toString()).toBe("err\n");
    const lines = readFileSync(log.path, "utf8").trimEnd().split("\n");
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z stdout F one$/);
    expect(lines.some((l) => / stdout P tw$/.test(l))).toBe(true);
    child.kill();
  });

  it("reads what the pipes still hold when the drain comes", async () => {
    const { log, stdout, exited } = await startLogger();
    const big = Buffer.concat([Buffer.alloc(300_000, "x"), Buffer.from("\nend")]);
    // Everything is handed to the kernel, then the drain is asked at once: the logger must read what
    // is left itself before it marks the end.
    await write(stdout, big);
    await log.requestDrain();
    expect(await exited).toBe(0);
    const got = await readAll(log);
    expect(got.stdout.equals(big)).toBe(true);
    expect(existsSync(log.donePath)).toBe(true);
  });

  it("finishes on stdout EOF (task deleted, or a tty's console closed)", async () => {
    const { log, stdout, stderr, exited } = await startLogger();
    await write(stderr, "last words\n");
    stdout.end("bye\n");
    expect(await exited).toBe(0);
    expect(await log.isDone()).toBe(true);
    const got = await readAll(log);
    expect(got.stdout.toString()).toBe("bye\n");
    expect(got.stderr.toString()).toBe("last words\n");
  });

  it("finishes on SIGTERM (the shim stopping it)", async () => {
    const { log, stdout, child, exited } = await startLogger();
    await write(stdout, "before term\n");
    await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(await log.isDone()).toBe(true);
    expect((await readAll(log)).stdout.toString()).toBe("before term\n");
  });

  it("finishes when the init process named by init.pid in its directory is gone", async () => {
    const bundle = mkdtempSync(join(dir, "bundle-"));
    const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
    writeFileSync(join(bundle, "init.pid"), String(sleeper.pid));
    const { log, stdout, exited } = await startLogger(bundle);
    await write(stdout, "running\n");
    await new Promise((r) => setTimeout(r, 1200));
    expect(await log.isDone()).toBe(false);
    sleeper.kill("SIGKILL");
    expect(await exited).toBe(0);
    expect(await log.isDone()).toBe(true);
    expect((await readAll(log)).stdout.toString()).toBe("running\n");
  });

  it("reports a log it cannot open in <log>.error, and exits", async () => {
    const log = new TaskLog(mkdtempSync(join(dir, "not-a-file-")));
    const child = spawn(process.execPath, [LOGGER_SCRIPT, log.path], {
      stdio: ["ignore", "ignore", "ignore", "pipe", "pipe", "pipe"],
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(1);
    expect((await log.startError())?.message).toMatch(/EISDIR/);
  });

  it("does not follow a symlink at the log's name: nothing is written through it", async () => {
    const victim = join(dir, "victim.txt");
    writeFileSync(victim, "precious\n");
    const log = new TaskLog(join(dir, `c${++n}.log`));
    symlinkSync(victim, log.path);
    const child = spawn(process.execPath, [LOGGER_SCRIPT, log.path], {
      stdio: ["ignore", "ignore", "ignore", "pipe", "pipe", "pipe"],
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(1);
    expect((await log.startError())?.message).toMatch(/ELOOP/);
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
  });
});
