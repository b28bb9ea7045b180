// Faults: daemons that die in the middle of calls. A private containerd and a dockerd on it (daemons.ts;
// the harness's shared daemons serve other test files meanwhile and are never touched) are killed with
// SIGKILL during a log follow, an exec stream, a pull and an events stream (Docker), and during an exec'd
// process's wait, a task's wait, an events subscription and a pull (containerd). Each call must end within
// 2 s of the kill with an UnavailableError, without an unhandled rejection and without leaving a socket
// to the dead daemon open; once the daemon is back, the same client object must work again. Last, each
// client pointed at a socket that is missing, or that the user may not use, must say so and name the path.
//
// "The call" for a containerd task: its stdout is a FIFO the shim writes, and the shim outlives containerd,
// so the output keeps flowing through the kill (checked). What containerd itself serves, and so what must
// fail, is Task.wait() (and the events and pull calls).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Container,
  ContainerdClient,
  pull as containerdPull,
  pullProgress as containerdPullProgress,
  createContainer,
  subscribeEvents,
  type Task,
  withProcessArgs,
} from "../../packages/containerd-client/src/index.js";
import { CriClient } from "../../packages/crio-client/src/index.js";
import { DockerClient, execRun, execStart, pullProgress } from "../../packages/docker-client/src/index.js";
import { UnavailableError } from "../../packages/runtime-core/src/index.js";
import { type DaemonName, PrivateDaemons } from "./daemons.js";
import { type SlowRegistry, startSlowRegistry } from "./slow-registry.js";
import { ownUnixSockets, watchSockets } from "./sockets.js";

const IMAGE = process.env.BERTH_TEST_IMAGE as string;
/** How long after the kill a call may take to end. */
const BUDGET_MS = 2000;
/** Past this, the call is counted as hung and aborted. */
const HANG_MS = 6000;
const LOOP = "while true; do echo x; sleep 0.1; done";
const root = fileURLToPath(new URL("../..", import.meta.url));

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const exec$ = promisify(execFile);

type Backend = "docker" | "containerd";
const figures = {
  survived: { docker: 0, containerd: 0 } as Record<Backend, number>,
  hangs: 0,
  unhandled: 0,
  socketsLeft: 0,
  slowest: { ms: 0, what: "" },
  pathErrors: 0,
  pathChecks: 0,
};

let daemons: PrivateDaemons;
let registry: SlowRegistry;
/** Every rejection nobody handled while this file ran. */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => {
  unhandled.push(reason);
};

/** Consume an async iterable in the background; `reached(n)` waits until n items have come. */
function follow<T>(source: AsyncIterable<T>) {
  let count = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const ended = (async () => {
    for await (const _ of source) {
      count++;
      for (const w of waiters) if (count >= w.n) w.resolve();
    }
    return count;
  })();
  return {
    ended,
    get count() {
      return count;
    },
    reached(n: number): Promise<void> {
      if (count >= n) return Promise.resolve();
      return Promise.race([
        new Promise<void>((resolve) => waiters.push({ n, resolve })),
        ended.then((c) => {
          throw new Error(`the stream ended after ${c} items`);
        }),
      ]);
    },
  };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The daemon under test and the client the calls go through. */
interface Target {
  daemon: DaemonName;
  socket: string;
  /** A cheap call on the same client. */
  probe(): Promise<unknown>;
}

/**
 * Start a call (`start` returns once it is in flight, with a promise of its end), kill the daemon with
 * SIGKILL, and check the call: it ends within BUDGET_MS of the kill with an UnavailableError, no
 * rejection goes unhandled, and no socket to the daemon stays open. Then a new call on the same client
 * fails as fast, `whileDown` runs, and the daemon is started again (also when a check failed, so that the
 * next case finds it up).
 */
async function killDuring(
  what: string,
  target: Target,
  start: (signal: AbortSignal) => Promise<{ ended: Promise<unknown> }>,
  whileDown?: () => Promise<void>,
): Promise<void> {
  const { daemon, socket } = target;
  const unhandledBefore = unhandled.length;
  const ac = new AbortController();
  try {
    const before = await ownUnixSockets();
    const { ended } = await start(ac.signal);
    let endedAt = 0;
    const outcome = ended.then(
      (value) => {
        endedAt = performance.now();
        return { ok: true as const, value };
      },
      (error: unknown) => {
        endedAt = performance.now();
        return { ok: false as const, error };
      },
    );
    const sockets = await watchSockets(socket, before);
    expect(sockets.toDaemon.size, `${what}: connections to ${daemon} while the call runs`).toBeGreaterThan(0);
    const killedAt = await daemons.kill(daemon);
    const result = await Promise.race([outcome, sleep(HANG_MS).then(() => undefined)]);
    if (!result) {
      figures.hangs++;
      ac.abort();
      throw new Error(`${what}: still running ${HANG_MS} ms after ${daemon} was killed`);
    }
    const elapsed = Math.max(0, endedAt - killedAt);
    if (elapsed > figures.slowest.ms) figures.slowest = { ms: Math.round(elapsed), what };
    const left = await sockets.leftover(1000);
    figures.socketsLeft += left;
    await sleep(20); // an unhandled rejection is reported after the microtask queue drains

    if (result.ok)
      throw new Error(`${what}: ended without an error after the kill (${String(result.value)})`);
    expect(result.error, `${what}: ${String(result.error)}`).toBeInstanceOf(UnavailableError);
    expect(elapsed, `${what}: ms from the kill to the error`).toBeLessThan(BUDGET_MS);
    expect(left, `${what}: sockets left open`).toBe(0);
    expect(unhandled.slice(unhandledBefore), `${what}: unhandled rejections`).toEqual([]);

    // Calls made while the daemon is away fail at once too (and must not poison the client for later).
    const t0 = performance.now();
    const probeError = await target.probe().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(probeError, `${what}: a call while ${daemon} is down`).toBeInstanceOf(UnavailableError);
    expect(performance.now() - t0).toBeLessThan(BUDGET_MS);
    await whileDown?.();
  } finally {
    if (!daemons.pid(daemon)) await daemons.start(daemon);
  }
}

function printFigures(): void {
  const f = figures;
  const kills = f.survived.docker + f.survived.containerd;
  console.log(
    `faults: ${kills} kills survived (docker ${f.survived.docker}, containerd ${f.survived.containerd}), ` +
      `${f.hangs} hangs, ${f.unhandled} unhandled rejections, ${f.socketsLeft} sockets left; ` +
      `slowest error ${f.slowest.ms} ms after its kill (${f.slowest.what || "-"}); ` +
      `socket errors naming the path: ${f.pathErrors}/${f.pathChecks}`,
  );
}

describe.sequential("faults", () => {
  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    await PrivateDaemons.removeStale();
    daemons = await PrivateDaemons.create();
    registry = await startSlowRegistry();
  });

  afterAll(async () => {
    await registry?.close();
    const report = await daemons?.teardown();
    await sleep(20);
    process.off("unhandledRejection", onUnhandled);
    figures.unhandled = unhandled.length;
    printFigures();
    if (report?.actions.length) console.log(`faults teardown: ${report.actions.join("; ")}`);
    expect(report?.leftovers ?? []).toEqual([]);
  }, 120_000);

  describe.sequential("docker", () => {
    let docker: DockerClient;
    let id = "";
    const target: Target = {
      daemon: "dockerd",
      get socket() {
        return daemons.dockerSock;
      },
      probe: () => docker.system.ping(),
    };

    const ensureRunning = async () => {
      // Without live-restore, a restarted dockerd stops the containers it finds running.
      const info = await docker.containers.inspect({ id });
      if (!info.State?.Running) await docker.containers.start({ id });
    };

    beforeAll(async () => {
      await daemons.start("containerd");
      await daemons.start("dockerd");
      docker = new DockerClient({ host: `unix://${daemons.dockerSock}` });
      for await (const _ of pullProgress(docker, IMAGE, { auth: false })) {
      }
      // SIGKILL to stop: a restarted dockerd stops what it finds running, and sh as pid 1 ignores SIGTERM.
      const body = { Image: IMAGE, Cmd: ["sh", "-c", LOOP], StopSignal: "SIGKILL" };
      id = (await docker.containers.create({ body })).Id;
      await docker.containers.start({ id });
    }, 90_000);

    afterAll(async () => {
      if (id && daemons.pid("dockerd")) await docker.containers.remove({ id, force: true }).catch(() => {});
      await docker?.close();
      await daemons.stop("dockerd");
    }, 60_000);

    it("a log follow ends with UnavailableError; the same client follows again after the restart", async () => {
      await killDuring("docker log follow", target, async (signal) => {
        const logs = follow(
          await docker.containers.logs({ id, follow: true, stdout: true, stderr: true }, { signal }),
        );
        await logs.reached(2);
        return { ended: logs.ended };
      });
      await ensureRunning();
      const again = await docker.containers.logs({ id, follow: true, stdout: true, tail: "1" });
      let frames = 0;
      for await (const _ of again) if (++frames === 2) break;
      expect(frames).toBe(2);
      figures.survived.docker++;
    });

    it("an exec stream ends with UnavailableError; the same client execs again after the restart", async () => {
      await ensureRunning();
      await killDuring("docker exec stream", target, async (signal) => {
        const session = await execStart(docker, id, ["sh", "-c", LOOP], { signal });
        const output = follow(session.output);
        await output.reached(2);
        return { ended: output.ended };
      });
      await ensureRunning();
      const r = await execRun(docker, id, ["echo", "again"]);
      expect({ exitCode: r.exitCode, stdout: r.stdout.toString() }).toEqual({
        exitCode: 0,
        stdout: "again\n",
      });
      figures.survived.docker++;
    });

    it("a pull ends with UnavailableError; the same client pulls the image after the restart", async () => {
      registry.rate = 32 * 1024;
      await killDuring("docker pull", target, async (signal) => {
        const layer = registry.layerStarted();
        const progress = follow(pullProgress(docker, registry.image, { auth: false, signal }));
        await Promise.race([layer, progress.ended]);
        await sleep(300); // the layer is on its way
        return { ended: progress.ended };
      });
      registry.rate = 0;
      for await (const _ of pullProgress(docker, registry.image, { auth: false })) {
      }
      const image = await docker.images.inspect({ name: registry.image });
      expect(image.RepoTags).toContain(registry.image);
      figures.survived.docker++;
    });

    it("an events stream ends with UnavailableError; the same client gets events after the restart", async () => {
      await killDuring("docker events", target, async (signal) => {
        const events = follow(await docker.system.events({ filters: { type: ["volume"] } }, { signal }));
        await docker.volumes.create({ body: { Name: `faults-${randomBytes(3).toString("hex")}` } });
        await events.reached(1);
        return { ended: events.ended };
      });
      const again = await docker.system.events({ filters: { type: ["volume"] } });
      const name = `faults-${randomBytes(3).toString("hex")}`;
      await docker.volumes.create({ body: { Name: name } });
      for await (const e of again) {
        expect(e.Actor?.ID).toBe(name);
        break;
      }
      figures.survived.docker++;
    });
  });

  describe.sequential("containerd", () => {
    let c: ContainerdClient;
    let container: Container;
    let task: Task;
    let lines = 0;
    const target: Target = {
      daemon: "containerd",
      get socket() {
        return daemons.containerdSock;
      },
      probe: () => c.version.version({}),
    };

    beforeAll(async () => {
      if (!daemons.pid("containerd")) await daemons.start("containerd");
      c = new ContainerdClient({ address: daemons.containerdSock, namespace: daemons.namespace });
      await containerdPull(c, IMAGE);
      container = await createContainer(c, IMAGE, "loop", {
        runtime: { root: daemons.runcRoot },
        spec: [withProcessArgs("sh", "-c", LOOP)],
      });
      task = await container.newTask();
      task.stdout.on("data", (chunk: Buffer) => {
        lines += chunk.toString().split("\n").length - 1;
      });
      await task.start();
    }, 90_000);

    afterAll(async () => {
      if (daemons.pid("containerd")) {
        await task?.kill("SIGKILL").catch(() => {});
        await task?.delete().catch(() => {});
        await container?.delete().catch(() => {});
      }
      c?.close();
    }, 60_000);

    it("an exec'd process's wait ends with UnavailableError; after the restart the same client waits it out", async () => {
      const proc = await task.exec(["sh", "-c", LOOP]);
      let procLines = 0;
      proc.stdout.on("data", (chunk: Buffer) => {
        procLines += chunk.toString().split("\n").length - 1;
      });
      await proc.start();
      await killDuring(
        "containerd exec wait",
        target,
        async () => {
          await until("exec output", () => procLines >= 2);
          return { ended: proc.wait() };
        },
        async () => {
          const before = procLines;
          await until("exec output while containerd is down", () => procLines > before, 2000);
        },
      );
      const waiting = proc.wait();
      await proc.kill("SIGKILL");
      expect((await waiting).exitCode).toBe(137);
      await proc.delete();
      figures.survived.containerd++;
    });

    it("a task's wait ends with UnavailableError while its stdout follows on; the same client waits it out", async () => {
      await killDuring(
        "containerd task wait",
        target,
        async () => {
          await until("task output", () => lines >= 2);
          return { ended: task.wait() };
        },
        async () => {
          const before = lines;
          await until("task output while containerd is down", () => lines > before, 2000);
        },
      );
      expect(await task.status()).toBe("running");
      const waiting = task.wait();
      const stdoutEnded = new Promise<void>((resolve) => task.stdout.once("end", resolve));
      await task.kill("SIGKILL");
      expect((await waiting).exitCode).toBe(137);
      await Promise.race([
        stdoutEnded,
        sleep(5000).then(() => Promise.reject(new Error("stdout never ended"))),
      ]);
      figures.survived.containerd++;
    });

    it("an events subscription ends with UnavailableError; the same client subscribes again after the restart", async () => {
      const created = () =>
        c.namespaces.create({
          namespace: { name: `${daemons.namespace}-${randomBytes(3).toString("hex")}` },
        });
      const filters = ['topic=="/namespaces/create"'];
      await killDuring("containerd events", target, async (signal) => {
        const events = follow(subscribeEvents(c, filters, { signal }));
        // The subscription starts with the iteration: create namespaces until one is seen.
        while (events.count === 0) {
          await created();
          await Promise.race([events.reached(1), sleep(200)]);
        }
        return { ended: events.ended };
      });
      const again = subscribeEvents(c, filters);
      const seen = (async () => {
        for await (const e of again) return e.topic;
        return undefined;
      })();
      let topic: string | undefined;
      while (topic === undefined) {
        await created();
        topic = await Promise.race([seen, sleep(200).then(() => undefined)]);
      }
      expect(topic).toBe("/namespaces/create");
      figures.survived.containerd++;
    });

    it("a pull ends with UnavailableError; the same client pulls the image after the restart", async () => {
      registry.rate = 32 * 1024;
      await killDuring("containerd pull", target, async (signal) => {
        const layer = registry.layerStarted();
        const progress = follow(containerdPullProgress(c, registry.image, { signal }));
        await Promise.race([layer, progress.ended]);
        await sleep(300); // the layer is on its way into the content store
        return { ended: progress.ended };
      });
      registry.rate = 0;
      const image = await containerdPull(c, registry.image);
      expect(image.name).toBe(registry.image);
      figures.survived.containerd++;
    });
  });

  describe.sequential("sockets", () => {
    const clients = (path: string) => [
      {
        name: "docker",
        call: async () => {
          const docker = new DockerClient({ host: `unix://${path}` });
          try {
            await docker.system.ping();
          } finally {
            await docker.close();
          }
        },
      },
      {
        name: "containerd",
        call: async () => {
          const c = new ContainerdClient({ address: path });
          try {
            await c.version.version({}, { timeout: 5000 });
          } finally {
            c.close();
          }
        },
      },
      {
        name: "cri",
        call: async () => {
          const cri = new CriClient({ endpoint: `unix://${path}` });
          try {
            await cri.version({ timeout: 5000 });
          } finally {
            cri.close();
          }
        },
      },
    ];

    it("a socket that does not exist: every client throws UnavailableError naming the path", async () => {
      const path = join(daemons.dir, "missing.sock");
      for (const client of clients(path)) {
        figures.pathChecks++;
        const err = await client.call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, client.name).toBeInstanceOf(UnavailableError);
        expect((err as Error).message, client.name).toContain(path);
        expect((err as Error).message, client.name).toMatch(/does not exist/);
        figures.pathErrors++;
      }
    });

    it("a socket the user may not use: every client throws UnavailableError naming the path", async () => {
      // Root ignores file permissions: the clients run as nobody, in a child process (probe.ts) that starts
      // as root (to load the checkout from wherever it is) and drops to nobody before its first call.
      const path = join(daemons.dir, "denied.sock");
      const server = createServer((s) => s.destroy());
      await new Promise<void>((resolve) => server.listen(path, resolve));
      try {
        await chmod(path, 0);
        const { stdout } = await exec$(
          process.execPath,
          [
            join(root, "node_modules/tsx/dist/cli.mjs"),
            "--tsconfig",
            join(root, "test/faults/tsconfig.probe.json"),
            join(root, "test/faults/probe.ts"),
            path,
          ],
          { cwd: root, timeout: 60_000, env: { ...process.env, HOME: "/tmp" } },
        );
        const results = stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as { client: string; ok: boolean; name?: string; message?: string });
        expect(results.map((r) => r.client)).toEqual(["docker", "containerd", "cri"]);
        for (const r of results) {
          figures.pathChecks++;
          expect(r.name, r.client).toBe("UnavailableError");
          expect(r.message, r.client).toContain(path);
          expect(r.message, r.client).toMatch(/permission denied/);
          figures.pathErrors++;
        }
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    }, 60_000);
  });
});
