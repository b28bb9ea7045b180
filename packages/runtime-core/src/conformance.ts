// The conformance suite every Runtime must pass, written against a minimal test API (vitest, jest and
// node:test's describe/it fit it) with node:assert, so anyone can run it against their own backend:
//
//   import { describe, it, beforeAll, afterAll } from "vitest";
//   runtimeConformance({ name: "docker", connect: async () => myRuntime, image: "busybox:latest",
//                        test: { describe, it, beforeAll, afterAll } });
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { AbortedError, NotFoundError, ValidationError } from "./errors.js";
import type { ContainerSpec, LogEntry, Runtime } from "./runtime.js";

type Fn = () => unknown | Promise<unknown>;
export interface TestApi {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: Fn, timeout?: number): void;
  beforeAll(fn: Fn, timeout?: number): void;
  afterAll(fn: Fn, timeout?: number): void;
}

export interface ConformanceOptions {
  name: string;
  connect: () => Promise<Runtime>;
  /** A busybox-like image with sh, printf, cat, sleep, id. */
  image: string;
  test: TestApi;
  /** Per-test timeout in ms (default 60 s). */
  timeout?: number;
}

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");

async function drain(entries: AsyncIterable<LogEntry>): Promise<{ stdout: string; stderr: string }> {
  const out = { stdout: "", stderr: "" };
  for await (const e of entries) out[e.stream] += text(e.data);
  return out;
}

export function runtimeConformance(options: ConformanceOptions): void {
  const { test, image } = options;
  const timeout = options.timeout ?? 60_000;
  const run = randomBytes(4).toString("hex");
  const labels = { "berth.conformance": run };
  let rt: Runtime;
  const spec = (command: string[], extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
    ...extra,
    image,
    command,
    labels: { ...labels, ...extra.labels },
  });

  test.describe(`Runtime conformance: ${options.name}`, () => {
    test.beforeAll(async () => {
      rt = await options.connect();
      await rt.pull(image);
    }, timeout);

    test.afterAll(async () => {
      if (!rt) return;
      for (const c of await rt.list({ labels, all: true }).catch(() => [])) {
        await rt.remove(c.id, { force: true }).catch(() => {});
      }
      await rt.close();
    }, timeout);

    test.it(
      "reports exit codes",
      async () => {
        const res = await rt.run(spec(["sh", "-c", "exit 3"]));
        assert.equal(res.exitCode, 3);
      },
      timeout,
    );

    test.it(
      "keeps stdout and stderr apart, binary-safe",
      async () => {
        const res = await rt.run(spec(["sh", "-c", "printf '\\000\\001\\377'; echo to-stderr >&2"]));
        assert.deepEqual([...res.stdout], [0, 1, 255]);
        assert.equal(text(res.stderr), "to-stderr\n");
      },
      timeout,
    );

    test.it(
      "applies env, workdir and user",
      async () => {
        const res = await rt.run(
          spec(["sh", "-c", "echo $FOO; pwd; id -u"], {
            env: { FOO: "bar" },
            workdir: "/tmp",
            user: "65534",
          }),
        );
        assert.equal(text(res.stdout), "bar\n/tmp\n65534\n");
      },
      timeout,
    );

    test.it(
      "filters list by labels",
      async () => {
        const a = await rt.create(spec(["true"], { labels: { "berth.pick": "a" } }));
        const b = await rt.create(spec(["true"], { labels: { "berth.pick": "b" } }));
        const picked = await rt.list({ labels: { ...labels, "berth.pick": "a" }, all: true });
        assert.deepEqual(
          picked.map((c) => c.id),
          [a],
        );
        assert.equal(picked[0]?.labels["berth.pick"], "a");
        const both = (await rt.list({ labels, all: true })).map((c) => c.id);
        assert.ok(both.includes(a) && both.includes(b));
      },
      timeout,
    );

    test.it(
      "waits for the exit code",
      async () => {
        const id = await rt.create(spec(["sh", "-c", "sleep 0.3; exit 4"]));
        await rt.start(id);
        assert.equal((await rt.wait(id)).exitCode, 4);
        const info = await rt.inspect(id);
        assert.equal(info.state, "exited");
        assert.equal(info.exitCode, 4);
      },
      timeout,
    );

    test.it(
      "follows logs until the container exits",
      async () => {
        const id = await rt.create(
          spec(["sh", "-c", "for i in 1 2 3; do echo l$i; echo e$i >&2; sleep 0.2; done"]),
        );
        await rt.start(id);
        const got = await drain(rt.logs(id, { follow: true }));
        assert.equal(got.stdout, "l1\nl2\nl3\n");
        assert.equal(got.stderr, "e1\ne2\ne3\n");
      },
      timeout,
    );

    test.it(
      "execs with stdin and reports the exit code",
      async () => {
        const id = await rt.create(spec(["sleep", "300"]));
        await rt.start(id);
        const res = await rt.exec(id, ["sh", "-c", "cat; exit 5"], { stdin: "hello\n" });
        assert.equal(res.exitCode, 5);
        assert.equal(text(res.stdout), "hello\n");
        await rt.remove(id, { force: true });
      },
      timeout,
    );

    test.it(
      "stops with a grace period, then kills",
      async () => {
        const polite = await rt.create(
          spec(["sh", "-c", "trap 'echo term; exit 0' TERM; while true; do sleep 0.1; done"]),
        );
        const stubborn = await rt.create(spec(["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]));
        await rt.start(polite);
        await rt.start(stubborn);
        await new Promise((r) => setTimeout(r, 300));
        await rt.stop(polite, { timeout: 10 });
        assert.equal((await rt.inspect(polite)).exitCode, 0);
        assert.match((await drain(rt.logs(polite))).stdout, /term/);
        const t0 = Date.now();
        await rt.stop(stubborn, { timeout: 1 });
        assert.equal((await rt.inspect(stubborn)).exitCode, 137);
        assert.ok(Date.now() - t0 < 15_000, "the kill came after the grace period");
      },
      timeout,
    );

    test.it(
      "removes containers, and unknown ids are NotFound",
      async () => {
        const id = await rt.create(spec(["true"]));
        await rt.remove(id);
        await assert.rejects(rt.inspect(id), NotFoundError);
        await assert.rejects(rt.inspect(`berth-no-such-${run}`), NotFoundError);
        await assert.rejects(rt.start(`berth-no-such-${run}`), NotFoundError);
        await assert.rejects(rt.remove(`berth-no-such-${run}`), NotFoundError);
      },
      timeout,
    );

    test.it(
      "refuses a bad spec before anything reaches the daemon",
      async () => {
        await assert.rejects(rt.run(spec(["true"], { memory: -1 })), ValidationError);
        await assert.rejects(rt.create({ image: "Bad Image Ref" }), ValidationError);
      },
      timeout,
    );

    test.it(
      "leaves no container behind when a run is aborted",
      async () => {
        const controller = new AbortController();
        const mine = { "berth.abort": run };
        setTimeout(() => controller.abort(), 500);
        await assert.rejects(
          rt.run(spec(["sleep", "30"], { labels: mine }), { signal: controller.signal }),
          AbortedError,
        );
        assert.deepEqual(await rt.list({ labels: { ...labels, ...mine }, all: true }), []);
      },
      timeout,
    );
  });
}
