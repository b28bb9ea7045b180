// ContainerdRuntime beyond the conformance suite: logs kept by the shim-run logger (they outlive the
// process that started the container), log files removed with the container, what containerd cannot do
// refused with UnsupportedError, and the adapter's own edges.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AbortedError,
  ConflictError,
  type ContainerSpec,
  isBerthError,
  type LogEntry,
  NotFoundError,
  type RuntimeEvent,
  TimeoutError,
  UnsupportedError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerdClient, ContainerdRuntime, removeNamespace } from "../src/index.js";

const IMAGE = process.env.BERTH_TEST_IMAGE as string;
const runtime = { root: process.env.BERTH_RUNC_ROOT as string };
const namespace = `berth-runtime-${randomBytes(4).toString("hex")}`;
const logDir = mkdtempSync(join(tmpdir(), "berth-runtime-logs-"));
const labels = { "berth.runtime-test": namespace };

const client = ContainerdClient.fromEnv().withNamespace(namespace);
const rt = new ContainerdRuntime(client, { logDir, runtime });
const spec = (command: string[], extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
  image: IMAGE,
  command,
  ...extra,
  labels: { ...labels, ...extra.labels },
});
const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");
async function collect(
  entries: AsyncIterable<LogEntry>,
): Promise<{ stdout: string; stderr: string; all: LogEntry[] }> {
  const out = { stdout: "", stderr: "", all: [] as LogEntry[] };
  for await (const e of entries) {
    out[e.stream] += text(e.data);
    out.all.push(e);
  }
  return out;
}
const logPath = (id: string) => join(logDir, namespace, id, "container.log");

/** Processes whose command line mentions `needle`, with their parent's name. */
function processesMentioning(needle: string): { pid: number; comm: string; parent: string }[] {
  const out: { pid: number; comm: string; parent: string }[] = [];
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${p}/cmdline`, "utf8").includes(needle)) continue;
      const ppid = /PPid:\s*(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1];
      out.push({
        pid: Number(p),
        comm: readFileSync(`/proc/${p}/comm`, "utf8").trim(),
        parent: readFileSync(`/proc/${ppid}/comm`, "utf8").trim(),
      });
    } catch {}
  }
  return out;
}

beforeAll(async () => {
  await rt.pull(IMAGE);
}, 60_000);

afterAll(async () => {
  for (const c of await rt.list({ all: true }).catch(() => []))
    await rt.remove(c.id, { force: true }).catch(() => {});
  try {
    // containerd may refuse to delete a namespace for a moment after its last snapshots went: retry.
    for (let attempt = 1; ; attempt++) {
      try {
        await removeNamespace(client);
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await rt.close();
    rmSync(logDir, { recursive: true, force: true });
  }
});

describe("logs kept by the shim's logger", () => {
  it("outlive the process that started the container", async () => {
    // Another node process creates and starts the container, then exits at once.
    const script = join(logDir, "starter.mts");
    const src = new URL("../src/index.ts", import.meta.url).pathname;
    writeFileSync(
      script,
      `import { ContainerdClient, ContainerdRuntime } from ${JSON.stringify(src)};
const rt = new ContainerdRuntime(ContainerdClient.fromEnv().withNamespace(${JSON.stringify(namespace)}),
  { logDir: ${JSON.stringify(logDir)}, runtime: ${JSON.stringify(runtime)} });
const id = await rt.create({ image: ${JSON.stringify(IMAGE)}, labels: ${JSON.stringify(labels)},
  command: ["sh", "-c", "echo first; sleep 1; echo second >&2; sleep 0.5; printf 'no newline'"] });
await rt.start(id);
process.stdout.write(id);
await rt.close();
`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      stdio: ["ignore", "pipe", "inherit"],
      cwd: new URL("..", import.meta.url).pathname,
    });
    let id = "";
    child.stdout.on("data", (c: Buffer) => {
      id += c.toString();
    });
    expect(await new Promise((resolve) => child.on("exit", resolve))).toBe(0);
    expect(id).toMatch(/^[0-9a-f]{64}$/);

    // The logger is the shim's child, not ours nor the exited starter's.
    const loggers = processesMentioning(logPath(id));
    expect(loggers.map((p) => p.parent)).toEqual(["containerd-shim"]);

    // A new runtime object on the same log directory finds the log. One with another log directory is
    // refused: a runtime reads and writes logs only in its own (a record's path is anyone's to write).
    const other = new ContainerdRuntime(ContainerdClient.fromEnv().withNamespace(namespace), {
      logDir,
      runtime,
    });
    const elsewhere = new ContainerdRuntime(ContainerdClient.fromEnv().withNamespace(namespace), {
      logDir: join(logDir, "elsewhere"),
      runtime,
    });
    try {
      await expect(collect(elsewhere.logs(id))).rejects.toThrow(/names its log at/);
      const got = await collect(other.logs(id, { follow: true }));
      expect(got.stdout).toBe("first\nno newline");
      expect(got.stderr).toBe("second\n");
      expect(got.all.every((e) => e.time instanceof Date)).toBe(true);
      expect((await other.inspect(id)).state).toBe("exited");
      // Read again, not following: the same.
      expect((await collect(other.logs(id))).stdout).toBe("first\nno newline");
      expect((await collect(other.logs(id, { tail: 1 }))).all.map((e) => text(e.data))).toEqual([
        "no newline",
      ]);
    } finally {
      await other.close();
      await elsewhere.close();
    }
    // Done with its task, the logger left by itself.
    for (let i = 0; i < 20 && processesMentioning(logPath(id)).length; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(processesMentioning(logPath(id))).toEqual([]);
    await rt.remove(id);
  }, 60_000);

  it("the logger marks the end by itself once the container exits, unread", async () => {
    const id = await rt.create(spec(["sh", "-c", "echo bye"]));
    await rt.start(id);
    expect((await rt.wait(id)).exitCode).toBe(0);
    const deadline = Date.now() + 5_000;
    while (!existsSync(`${logPath(id)}.done`) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(`${logPath(id)}.done`)).toBe(true);
    for (let i = 0; i < 20 && processesMentioning(logPath(id)).length; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(processesMentioning(logPath(id))).toEqual([]);
    expect((await collect(rt.logs(id))).stdout).toBe("bye\n");
    await rt.remove(id);
  });

  it("run() that removes its container reads the task's FIFOs: no logger, no log file, output streamed", async () => {
    const seen: string[] = [];
    let loggers = 0;
    const res = await rt.run(
      spec(["sh", "-c", "echo out; sleep 0.3; echo err >&2; printf 'no newline'; exit 4"], {
        name: `fifo-${namespace}`,
      }),
      {
        onOutput: (e) => {
          // Output arrives while the container still runs: its logger, if there were one, would be up.
          loggers += processesMentioning(join(logDir, namespace, `fifo-${namespace}`)).length;
          seen.push(`${e.stream}:${text(e.data)}`);
        },
      },
    );
    expect(res.exitCode).toBe(4);
    expect(text(res.stdout)).toBe("out\nno newline");
    expect(text(res.stderr)).toBe("err\n");
    expect(seen.join("")).toContain("stdout:out\n");
    expect(seen).toContain("stderr:err\n");
    expect(loggers).toBe(0);
    expect(existsSync(join(logDir, namespace, res.id))).toBe(false);
    await expect(rt.inspect(res.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("run() aborted at any point leaves no container, task or shim behind", async () => {
    // Aborts spread over the whole of a run: while the record, the task and its shim are being created,
    // while it runs. The task must not be created behind the cleanup's back (a cancelled create call
    // that containerd still carries out).
    const mine = { ...labels, "berth.abort-sweep": namespace };
    const outcomes = { aborted: 0, finished: 0 };
    for (let delay = 0; delay <= 400; delay += 10) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), delay);
      try {
        await rt.run(spec(["sh", "-c", "sleep 0.2"], { labels: mine }), { signal: controller.signal });
        outcomes.finished++;
      } catch (err) {
        expect(err).toBeInstanceOf(AbortedError);
        outcomes.aborted++;
      } finally {
        clearTimeout(timer);
      }
    }
    expect(outcomes.aborted).toBeGreaterThan(5);
    expect(await rt.list({ labels: mine, all: true })).toEqual([]);
    expect((await client.tasks.list({})).tasks).toEqual([]);
    // A shim outlives its task briefly; one serving a task of this namespace after that is an orphan.
    const shims = () =>
      processesMentioning(namespace).filter((p) => p.comm.startsWith("containerd-shim")).length;
    for (let i = 0; i < 50 && shims() > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(shims()).toBe(0);
  }, 120_000);

  it("remove() deletes the log files", async () => {
    const res = await rt.run(spec(["sh", "-c", "echo kept"]), { remove: false });
    expect(text(res.stdout)).toBe("kept\n");
    expect(existsSync(logPath(res.id))).toBe(true);
    await rt.remove(res.id);
    expect(existsSync(join(logDir, namespace, res.id))).toBe(false);
    await expect(rt.inspect(res.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("keeps long lines whole, and since/tail select", async () => {
    const id = await rt.create(
      spec(["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' a; echo; echo two; sleep 1.2; echo three"]),
    );
    await rt.start(id);
    await rt.wait(id);
    const all = await collect(rt.logs(id));
    expect(all.all.map((e) => e.data.length)).toEqual([40_001, 4, 6]);
    const since = all.all[2]?.time as Date;
    expect((await collect(rt.logs(id, { since }))).stdout).toBe("three\n");
    expect((await collect(rt.logs(id, { tail: 2 }))).stdout).toBe("two\nthree\n");
    await rt.remove(id);
  });

  it("start() runs an exited container again, appending to its log", async () => {
    const id = await rt.create(spec(["sh", "-c", "echo run; exit 3"]));
    await rt.start(id);
    expect((await rt.wait(id)).exitCode).toBe(3);
    await rt.start(id);
    expect((await rt.wait(id)).exitCode).toBe(3);
    expect((await collect(rt.logs(id, { follow: true }))).stdout).toBe("run\nrun\n");
    await rt.remove(id);
  });

  it("a logger that cannot start makes start() fail clearly, and the container stays created", async () => {
    const broken = new ContainerdRuntime(client, { logDir, runtime, node: "/nonexistent/node" });
    const id = await broken.create(spec(["true"]));
    const err = await broken.start(id).catch((e: unknown) => e);
    expect(isBerthError(err)).toBe(true);
    expect((err as Error).message).toMatch(/binary|logging|no such file/i);
    expect((await rt.inspect(id)).state).toBe("created");
    await rt.remove(id);
  });
});

describe("what containerd alone cannot do", () => {
  it("ports, bridge and named networks, and stdin without a tty are UnsupportedError", async () => {
    const bad: Partial<ContainerSpec>[] = [
      { ports: [{ containerPort: 80, hostPort: 8080 }] },
      { network: "bridge" },
      { network: "my-net" },
      { stdin: true },
    ];
    for (const extra of bad) {
      await expect(rt.create(spec(["true"], extra))).rejects.toBeInstanceOf(UnsupportedError);
      await expect(rt.run(spec(["true"], extra))).rejects.toBeInstanceOf(UnsupportedError);
    }
    expect(await rt.list({ all: true, labels })).toEqual([]);
  });

  it("network none and the default are a private namespace with loopback only", async () => {
    for (const network of [undefined, "none"] as const) {
      const res = await rt.run(spec(["sh", "-c", "ls /sys/class/net"], network ? { network } : {}));
      expect(text(res.stdout).trim().split(/\s+/)).toEqual(["lo"]);
    }
  });
});

describe("the adapter's edges", () => {
  it("names, conflicts and not-running errors", async () => {
    const name = `berth-named-${randomBytes(3).toString("hex")}`;
    const id = await rt.create(spec(["sleep", "300"], { name }));
    expect(id).toBe(name);
    await expect(rt.create(spec(["true"], { name }))).rejects.toBeInstanceOf(ConflictError);
    await expect(rt.kill(id)).rejects.toBeInstanceOf(ConflictError);
    await expect(rt.exec(id, ["true"])).rejects.toBeInstanceOf(ConflictError);
    await expect(rt.stats(id)).rejects.toBeInstanceOf(ConflictError);
    await rt.start(id);
    await rt.start(id); // already running: nothing to do
    await expect(rt.remove(id)).rejects.toBeInstanceOf(ConflictError);
    expect((await rt.inspect(id)).state).toBe("running");
    await rt.stop(id, { graceSeconds: 0 });
    await rt.stop(id); // already stopped: nothing to do
    expect((await rt.inspect(id)).exitCode).toBe(137);
    await rt.remove(id);
  });

  it("exec: env, workdir, user names, tty and timeouts", async () => {
    const id = await rt.create(spec(["sleep", "300"], { env: { FROM_SPEC: "1" } }));
    await rt.start(id);
    try {
      const r = await rt.exec(id, ["sh", "-c", "echo $FROM_SPEC $EXTRA; pwd; id -u; id -g"], {
        env: { EXTRA: "2" },
        workdir: "/tmp",
        user: "nobody",
      });
      expect(text(r.stdout)).toBe("1 2\n/tmp\n65534\n65534\n");
      const tty = await rt.exec(id, ["sh", "-c", "test -t 1 && echo tty; echo err >&2"], { tty: true });
      expect(text(tty.stdout)).toMatch(/tty\r?\n/);
      expect(text(tty.stdout)).toMatch(/err/);
      const t0 = Date.now();
      await expect(rt.exec(id, ["sleep", "30"], { timeout: 300 })).rejects.toBeInstanceOf(TimeoutError);
      expect(Date.now() - t0).toBeLessThan(10_000);
      // A process that never reads a stdin larger than a pipe still times out.
      await expect(
        rt.exec(id, ["sleep", "30"], { stdin: "x".repeat(300_000), timeout: 300 }),
      ).rejects.toBeInstanceOf(TimeoutError);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      await expect(rt.exec(id, ["sleep", "30"], { signal: ac.signal })).rejects.toSatisfy(
        (e: unknown) => isBerthError(e) && e.code === "Aborted",
      );
      expect(Date.now() - t0).toBeLessThan(20_000);
      await expect(rt.exec(id, ["true"], { user: "berth-no-such-user" })).rejects.toSatisfy(isBerthError);
      expect((await rt.inspect(id)).state).toBe("running");
    } finally {
      await rt.remove(id, { force: true });
    }
  });

  it("stats report cpu, memory and pids; inspect reports times", async () => {
    const id = await rt.create(spec(["sh", "-c", "sleep 300"], { memory: 64 * 1024 * 1024 }));
    await rt.start(id);
    try {
      const s = await rt.stats(id);
      expect(s.memoryBytes).toBeGreaterThan(0);
      expect(s.memoryLimitBytes).toBe(64 * 1024 * 1024);
      expect(s.cpuNanos).toBeGreaterThan(0);
      expect(s.pids).toBeGreaterThanOrEqual(1);
      const info = await rt.inspect(id);
      expect(info.createdAt).toBeInstanceOf(Date);
      expect(info.startedAt).toBeInstanceOf(Date);
      await rt.kill(id, "SIGKILL");
      await rt.wait(id);
      const done = await rt.inspect(id);
      expect(done.finishedAt).toBeInstanceOf(Date);
      expect((done.finishedAt as Date) >= (done.startedAt as Date)).toBe(true);
      expect(done.pid).toBeUndefined();
    } finally {
      await rt.remove(id, { force: true });
    }
  });

  it("events: a container's life, filtered by labels", async () => {
    const mine = { "berth.events-life": randomBytes(3).toString("hex") };
    const controller = new AbortController();
    const seen: RuntimeEvent[] = [];
    const watching = (async () => {
      for await (const e of rt.events({ labels: mine, signal: controller.signal })) seen.push(e);
    })().catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    await rt.run(spec(["true"]), {}); // not ours: filtered out
    const res = await rt.run(spec(["sh", "-c", "exit 2"], { labels: mine }));
    const has = (action: string) => seen.some((e) => `${e.type}/${e.action}` === action);
    // The shim forwards its task events asynchronously: /tasks/delete may come after /containers/delete.
    for (let i = 0; i < 50 && !(has("task/delete") && has("container/delete")); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    controller.abort();
    await watching;
    expect(new Set(seen.map((e) => e.id))).toEqual(new Set([res.id]));
    const actions = seen.map((e) => `${e.type}/${e.action}`);
    // containerd 2.x's shim now and then loses its /tasks/delete (`ctr events` misses it too: 1 to 3 of
    // 15 runs on 2.1.9 here); 1.x always sends it.
    const major = Number(/^v?(\d+)/.exec((await rt.info()).version)?.[1]);
    expect(actions).toEqual(
      expect.arrayContaining([
        "container/create",
        "task/create",
        "task/start",
        "task/exit",
        ...(major < 2 ? ["task/delete"] : []),
        "container/delete",
      ]),
    );
    expect(seen.find((e) => e.action === "exit")?.attributes?.exitCode).toBe("2");
  });

  it("unary calls get the client's default deadline; a task's wait gets none", async () => {
    const quick = new ContainerdClient({ address: client.address, namespace, defaultTimeout: 500 });
    const none = new ContainerdClient({ address: client.address, namespace, defaultTimeout: 0 });
    const id = await rt.create(spec(["sh", "-c", "sleep 2; exit 3"]));
    try {
      await rt.start(id);
      const t0 = Date.now();
      const { exitStatus } = await quick.tasks.wait({ containerId: id });
      expect(exitStatus).toBe(3);
      expect(Date.now() - t0).toBeGreaterThan(500);
      await expect(none.version.version()).rejects.toBeInstanceOf(TimeoutError);
      expect((await none.version.version({}, { timeout: 10_000 })).version).toMatch(/^v?\d/);
    } finally {
      quick.close();
      none.close();
      await rt.remove(id, { force: true });
    }
  });

  it("info names containerd", async () => {
    const info = await rt.info();
    expect(info).toMatchObject({ backend: "containerd", name: "containerd", os: "linux" });
    expect(info.version).toMatch(/^\d+\.\d+/);
  });
});
