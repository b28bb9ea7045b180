// The conformance suite every Runtime must pass, written against a minimal test API (vitest, jest and
// node:test's describe/it fit it) with node:assert, so anyone can run it against their own backend:
//
//   import { describe, it, beforeAll, afterAll } from "vitest";
//   runtimeConformance({ name: "docker", connect: async () => myRuntime, image: "busybox:latest",
//                        test: { describe, it, beforeAll, afterAll } });
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { DOCKER_HUB_AUTH_SERVER, type RegistryCredentials } from "./credentials.js";
import {
  AbortedError,
  ConflictError,
  ContainerExitedError,
  DigestMismatchError,
  isBerthError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
  UnsupportedError,
  ValidationError,
} from "./errors.js";
import type { Capabilities, ContainerSpec, Endpoint, LogEntry, Runtime } from "./runtime.js";

type Fn = () => unknown | Promise<unknown>;
/** The parts of a test framework the suite uses; vitest's, jest's and node:test's functions fit. */
export interface TestApi {
  /** Groups the suite's tests under one name. */
  describe(name: string, fn: () => void): void;
  /** One test; `timeout` in milliseconds. */
  it(name: string, fn: Fn, timeout?: number): void;
  /** Runs once before the tests; `timeout` in milliseconds. */
  beforeAll(fn: Fn, timeout?: number): void;
  /** Runs once after the tests; `timeout` in milliseconds. */
  afterAll(fn: Fn, timeout?: number): void;
}

/** What runtimeConformance() runs against. */
export interface ConformanceOptions {
  /** The name the suite is described under ("Runtime conformance: <name>"). */
  name: string;
  /** Opens the Runtime under test; it is closed after the suite. */
  connect: () => Promise<Runtime>;
  /** A busybox-like image with sh, printf, cat, sleep, id. */
  image: string;
  /** The test framework's functions. */
  test: TestApi;
  /** Per-test timeout in ms (default 60 s). */
  timeout?: number;
  /** A registry of the test's own that misbehaves on purpose: the "hostile registry" checks run with it. */
  hostileRegistry?: HostileRegistry;
}

/**
 * What the hostile-registry checks need from the test: a registry the backend's daemon can reach (plain
 * HTTP on loopback is fine where the daemon allows it) that serves a tampered layer, and asks for
 * credentials before it serves another image.
 */
export interface HostileRegistry {
  /**
   * A new image (content no daemon holds yet) whose layer the registry serves with one byte flipped: the
   * size, the headers and the digest the manifest claims all unchanged, so only a digest check can tell.
   */
  tamperedImage(): Promise<string>;
  /** A new image (need not run) at a registry that answers 401 (Basic) until `credentials` come. */
  privateImage(): Promise<string>;
  /** The credentials the registry accepts for `privateImage`. */
  credentials: {
    /** The user name. */
    username: string;
    /** The password. */
    password: string;
  };
  /** How many requests the registry of `privateImage` has received so far, when the test can tell. */
  requests?(): number;
  /** The Authorization headers it has received so far, when the test can tell. */
  authorizations?(): string[];
}

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");

/** One HTTP GET through an endpoint: the status and body (at most 64 KiB). */
function httpGet(to: Endpoint, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: to.host, port: to.port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        if (body.length < 65_536) body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("no answer in 10 s")));
    req.on("error", reject);
    req.end();
  });
}

async function drain(entries: AsyncIterable<LogEntry>): Promise<{ stdout: string; stderr: string }> {
  const out = { stdout: "", stderr: "" };
  for await (const e of entries) out[e.stream] += text(e.data);
  return out;
}

/**
 * Registers the conformance suite every Runtime must pass: exit codes, stdout/stderr, env/workdir/user,
 * labels, wait, logs, exec, stop/kill/remove, typed errors, and each capability the Runtime declares (an
 * undeclared one must throw UnsupportedError). Containers it creates are labelled `berth.conformance` and
 * removed after the suite. The backend must be able to pull `options.image`.
 */
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
        try {
          const plain = await rt.exec(id, ["sh", "-c", "echo out; echo err >&2; exit 6"]);
          assert.equal(plain.exitCode, 6);
          assert.equal(text(plain.stdout), "out\n");
          assert.equal(text(plain.stderr), "err\n");
          if (rt.capabilities.execStdin) {
            const res = await rt.exec(id, ["sh", "-c", "cat; exit 5"], { stdin: "hello\n" });
            assert.equal(res.exitCode, 5);
            assert.equal(text(res.stdout), "hello\n");
          } else {
            await assert.rejects(rt.exec(id, ["cat"], { stdin: "hello\n" }), UnsupportedError);
          }
        } finally {
          await rt.remove(id, { force: true });
        }
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
        await rt.stop(polite, { graceSeconds: 10 });
        assert.equal((await rt.inspect(polite)).exitCode, 0);
        assert.match((await drain(rt.logs(polite))).stdout, /term/);
        const t0 = Date.now();
        await rt.stop(stubborn, { graceSeconds: 1 });
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
        // containerd 2.x's CRI answers OK to stopping an unknown container (the CRI calls stop idempotent):
        // the Runtime must still say NotFound, as every other backend does.
        await assert.rejects(rt.stop(`berth-no-such-${run}`, { graceSeconds: 1 }), NotFoundError);
        await assert.rejects(rt.kill(`berth-no-such-${run}`, "SIGKILL"), NotFoundError);
        await assert.rejects(rt.wait(`berth-no-such-${run}`), NotFoundError);
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
      "reports what inspect and list know",
      async () => {
        const id = await rt.create(spec(["sleep", "300"], { labels: { "berth.inspect": "yes" } }));
        try {
          const created = await rt.inspect(id);
          assert.equal(created.id, id);
          assert.equal(created.state, "created");
          assert.equal(created.labels["berth.inspect"], "yes");
          assert.ok(created.image.length > 0, "inspect names the image");
          await rt.start(id);
          const running = await rt.inspect(id);
          assert.equal(running.state, "running");
          assert.ok((running.pid ?? 0) > 0, "a running container has a pid");
          assert.ok(running.startedAt instanceof Date, "a running container has a start time");
          const listed = await rt.list({ labels: { ...labels, "berth.inspect": "yes" } });
          assert.deepEqual(
            listed.map((c) => [c.id, c.state]),
            [[id, "running"]],
          );
          await rt.kill(id);
          assert.equal((await rt.wait(id)).exitCode, 137);
          assert.deepEqual(await rt.list({ labels: { ...labels, "berth.inspect": "yes" } }), []);
        } finally {
          await rt.remove(id, { force: true }).catch(() => {});
        }
      },
      timeout,
    );

    test.it(
      "refuses an unknown user with a typed error and leaves nothing behind",
      async () => {
        await assert.rejects(rt.create(spec(["true"], { user: "not a user!" })), ValidationError);
        const mine = { "berth.nouser": run };
        await assert.rejects(
          rt.run(spec(["true"], { user: "berth-no-such-user", labels: mine })),
          (err: unknown) => isBerthError(err),
        );
        assert.deepEqual(await rt.list({ labels: { ...labels, ...mine }, all: true }), []);
      },
      timeout,
    );

    capabilityChecks(() => rt, spec, test, timeout);

    if (options.hostileRegistry)
      hostileRegistryChecks(() => rt, options.hostileRegistry, spec, test, timeout);

    test.it(
      "waits for a log line or an exec probe, and fails at once when the container exits first",
      async () => {
        const id = await rt.create(
          spec(["sh", "-c", "sleep 1; echo warming; echo ready-now >&2; sleep 300"]),
        );
        try {
          await rt.start(id);
          await rt.waitFor(id, { log: /ready-\w+/, stream: "stderr" }, { timeout: 30_000 });
          await rt.waitFor(id, { log: "warming" }, { timeout: 30_000 });
          // An exec probe polled until it exits 0: here once two seconds have passed (a condition on the
          // clock, not on the container's files, so it holds wherever the runtime runs the exec).
          const t0 = Date.now();
          const at = Math.floor(t0 / 1000) + 2;
          await rt.waitFor(id, { exec: ["sh", "-c", `test $(date +%s) -ge ${at}`] }, { timeout: 30_000 });
          assert.ok(Date.now() >= (at - 1) * 1000, "the exec probe was tried until it exited 0");
          await assert.rejects(
            rt.waitFor(id, { log: "warming", stream: "stderr" }, { timeout: 1_500 }),
            TimeoutError,
            "a line on the other stream does not count",
          );
          await assert.rejects(
            rt.waitFor(id, { exec: ["test", "-f", "/tmp/never"] }, { timeout: 1_500, interval: 100 }),
            (err: unknown) => err instanceof TimeoutError && /exited 1/.test(err.message),
          );
          const controller = new AbortController();
          setTimeout(() => controller.abort(), 300);
          await assert.rejects(rt.waitFor(id, { log: "never" }, { signal: controller.signal }), AbortedError);
          await assert.rejects(rt.waitFor(id, {} as never), ValidationError);
          await assert.rejects(rt.waitFor(id, { log: "x", port: 80 } as never), ValidationError);
          await assert.rejects(rt.waitFor(id, { http: { port: 80, path: "no-slash" } }), ValidationError);
        } finally {
          await rt.remove(id, { force: true });
        }
        const gone = await rt.create(spec(["sh", "-c", "echo boom; echo bust >&2; exit 3"]));
        try {
          await rt.start(gone);
          const t0 = Date.now();
          const err = await rt.waitFor(gone, { log: "never" }, { timeout: 30_000 }).catch((e: unknown) => e);
          assert.ok(err instanceof ContainerExitedError, `a ContainerExitedError, got ${String(err)}`);
          assert.equal(err.exitCode, 3);
          assert.ok(err.lastLines.includes("boom"), `the last lines: ${JSON.stringify(err.lastLines)}`);
          assert.ok(Date.now() - t0 < 20_000, "the exit ends the wait at once");
          await assert.rejects(rt.waitFor(gone, { exec: ["true"] }), ContainerExitedError);
        } finally {
          await rt.remove(gone, { force: true });
        }
        await assert.rejects(rt.waitFor(`berth-no-such-${run}`, { log: "x" }), NotFoundError);
      },
      timeout,
    );

    test.it(
      "leaves no container behind when a run is aborted",
      async () => {
        const controller = new AbortController();
        const mine = { "berth.abort": run };
        setTimeout(() => controller.abort(), 500);
        const t0 = Date.now();
        await assert.rejects(
          rt.run(spec(["sleep", "30"], { labels: mine }), { signal: controller.signal }),
          AbortedError,
        );
        // `sleep 30` must not have run to its end: the abort ends the run, not the container's exit.
        assert.ok(Date.now() - t0 < 20_000, `the aborted run returned after ${Date.now() - t0} ms`);
        assert.deepEqual(await rt.list({ labels: { ...labels, ...mine }, all: true }), []);
      },
      timeout,
    );
  });
}

type SpecFn = (command: string[], extra?: Partial<ContainerSpec>) => ContainerSpec;

/**
 * The same integrity and credential contract on every backend: a tampered layer is a DigestMismatchError
 * and leaves no image; credentials go only to the registry they name (others: UnauthorizedError, nothing
 * sent), and without a serverAddress they are the image's own registry's.
 */
function hostileRegistryChecks(
  rt: () => Runtime,
  registry: HostileRegistry,
  spec: SpecFn,
  test: TestApi,
  timeout: number,
): void {
  // `spec` names the suite's image: these name their own.
  const on = (image: string, extra: Partial<ContainerSpec> = {}) => ({ ...spec(["true"], extra), image });
  const noImage = async (image: string) =>
    assert.rejects(rt().create(on(image)), NotFoundError, `no image ${image} is left`);
  test.describe("hostile registry", () => {
    test.it(
      "a tampered layer is a DigestMismatchError, from pull and run, and leaves no image or container",
      async () => {
        const image = await registry.tamperedImage();
        await assert.rejects(rt().pull(image), DigestMismatchError);
        await noImage(image);
        const mine = { "berth.hostile": randomBytes(4).toString("hex") };
        await assert.rejects(rt().run(on(image, { labels: mine })), DigestMismatchError);
        await noImage(image);
        assert.deepEqual(await rt().list({ labels: mine, all: true }), []);
      },
      timeout,
    );

    test.it(
      "credentials for another registry are an UnauthorizedError, and nothing is sent",
      async () => {
        const image = await registry.privateImage();
        const before = registry.requests?.();
        for (const serverAddress of ["registry.invalid:5000", DOCKER_HUB_AUTH_SERVER, "docker.io"]) {
          const auth = { ...registry.credentials, serverAddress };
          const refused = (err: unknown) =>
            err instanceof UnauthorizedError && /not sent to another registry/.test(err.message);
          await assert.rejects(rt().pull(image, { auth }), refused, `credentials for ${serverAddress}`);
          await assert.rejects(rt().run(on(image), { auth }), refused);
        }
        if (before !== undefined) assert.equal(registry.requests?.(), before, "the registry was not asked");
        await noImage(image);
      },
      timeout,
    );

    test.it(
      "credentials without a serverAddress are the image's own registry's",
      async () => {
        const image = await registry.privateImage();
        const { username, password } = registry.credentials;
        // A JavaScript caller, or one who expects it: no serverAddress.
        await rt().pull(image, { auth: { username, password } as RegistryCredentials });
        const basic = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
        if (registry.authorizations) assert.ok(registry.authorizations().includes(basic), "they were sent");
        await rt().remove(await rt().create(on(image)), { force: true });
      },
      timeout,
    );
  });
}

/**
 * One check per capability: a declared capability works, and a missing one gives UnsupportedError
 * (never a silent no-op).
 */
function capabilityChecks(rt: () => Runtime, spec: SpecFn, test: TestApi, timeout: number): void {
  const unsupported = async (what: string, call: () => Promise<unknown>) =>
    assert.rejects(call, UnsupportedError, `${what} must throw UnsupportedError when not supported`);
  const checks: Record<keyof Capabilities, () => Promise<void>> = {
    ports: async () => {
      // busybox's httpd behind a published port: reported as bound, reached through endpoint().
      const serve =
        "mkdir -p /www && echo hello > /www/index.html && echo serving && exec httpd -f -p 8080 -h /www";
      const s = spec(["sh", "-c", serve], { ports: [{ containerPort: 8080 }] });
      if (!rt().capabilities.ports) {
        await unsupported("ports", () => rt().create(s));
        const id = await rt().create(spec(["sleep", "300"]));
        try {
          await rt().start(id);
          await unsupported("endpoint", () => rt().endpoint(id, 8080));
          await unsupported("waitFor port", () => rt().waitFor(id, { port: 8080 }));
          await unsupported("waitFor http", () => rt().waitFor(id, { http: { port: 8080 } }));
          assert.deepEqual((await rt().inspect(id)).ports, []);
        } finally {
          await rt().remove(id, { force: true });
        }
        return;
      }
      const id = await rt().create(s);
      try {
        await assert.rejects(rt().endpoint(id, 8080), ConflictError, "endpoint of a container not started");
        await rt().start(id);
        await rt().waitFor(id, { http: { port: 8080, path: "/index.html" } }, { timeout: 30_000 });
        await rt().waitFor(id, { port: 8080 }, { timeout: 10_000 });
        const info = await rt().inspect(id);
        const bound = info.ports.filter((p) => p.containerPort === 8080 && p.protocol === "tcp");
        assert.ok(bound.length > 0, `inspect reports port 8080/tcp as bound: ${JSON.stringify(info.ports)}`);
        for (const p of bound) assert.ok(p.hostPort > 0 && p.hostPort < 65536, `a host port: ${p.hostPort}`);
        const listed = (await rt().list({ labels: s.labels ?? {} })).find((c) => c.id === info.id);
        assert.deepEqual(
          listed?.ports
            .filter((p) => p.containerPort === 8080)
            .map((p) => p.hostPort)
            .sort(),
          bound.map((p) => p.hostPort).sort(),
        );
        const to = await rt().endpoint(id, 8080);
        assert.notEqual(to.host, "0.0.0.0");
        assert.ok(
          bound.some((p) => p.hostPort === to.port),
          `the endpoint's port ${to.port} is a bound one`,
        );
        assert.deepEqual(await httpGet(to, "/index.html"), { status: 200, body: "hello\n" });
        await assert.rejects(rt().endpoint(id, 9999), NotFoundError, "a port the container does not publish");
        await assert.rejects(
          rt().waitFor(id, { http: { port: 8080, path: "/missing" } }, { timeout: 1_500 }),
          (err: unknown) => err instanceof TimeoutError && /HTTP 404/.test(err.message),
        );
      } finally {
        await rt().remove(id, { force: true });
      }
    },
    tmpfs: async () => {
      const s = spec(["sh", "-c", "echo x > /scratch/f && grep -c ' /scratch tmpfs ' /proc/mounts"], {
        mounts: [{ type: "tmpfs", target: "/scratch" }],
      });
      if (!rt().capabilities.tmpfs) return unsupported("tmpfs", () => rt().run(s));
      const res = await rt().run(s);
      assert.equal(res.exitCode, 0, text(res.stderr));
      assert.equal(text(res.stdout), "1\n");
    },
    cpuLimit: async () => {
      const s = spec(["true"], { cpus: 0.5 });
      if (!rt().capabilities.cpuLimit) return unsupported("cpus", () => rt().run(s));
      assert.equal((await rt().run(s)).exitCode, 0);
    },
    memoryLimit: async () => {
      const s = spec(["true"], { memory: 64 * 1024 * 1024 });
      if (!rt().capabilities.memoryLimit) return unsupported("memory", () => rt().run(s));
      assert.equal((await rt().run(s)).exitCode, 0);
    },
    hostNetwork: async () => {
      const s = spec(["true"], { network: "host" });
      if (!rt().capabilities.hostNetwork) return unsupported("host network", () => rt().run(s));
      assert.equal((await rt().run(s)).exitCode, 0);
    },
    bridgeNetwork: async () => {
      const s = spec(["sleep", "300"], { network: "bridge" });
      if (!rt().capabilities.bridgeNetwork) return unsupported("bridge network", () => rt().create(s));
      const id = await rt().create(s);
      try {
        await rt().start(id);
        assert.match(
          (await rt().inspect(id)).ip ?? "",
          /^\d+\.\d+\.\d+\.\d+$/,
          "a bridged container has an IP",
        );
      } finally {
        await rt().remove(id, { force: true });
      }
    },
    stats: async () => {
      const id = await rt().create(spec(["sleep", "300"]));
      try {
        await rt().start(id);
        if (!rt().capabilities.stats) return await unsupported("stats", () => rt().stats(id));
        const st = await rt().stats(id);
        assert.ok(st.time instanceof Date);
        assert.ok((st.memoryBytes ?? 0) > 0, "stats report memory use");
      } finally {
        await rt().remove(id, { force: true });
      }
    },
    events: async () => {
      const controller = new AbortController();
      const mine = { "berth.events": randomBytes(4).toString("hex") };
      const iterate = async () => {
        for await (const e of rt().events({ labels: mine, signal: controller.signal })) return e;
        return undefined;
      };
      if (!rt().capabilities.events) return unsupported("events", iterate);
      const first = iterate();
      first.catch(() => {});
      // Subscriptions start asynchronously: keep starting containers until one is seen.
      const ids: string[] = [];
      const timer = setTimeout(() => controller.abort(), 20_000);
      try {
        const seen = await Promise.race([
          first,
          (async () => {
            while (!controller.signal.aborted) {
              const id = await rt().create(spec(["true"], { labels: mine }));
              ids.push(id);
              await rt().start(id);
              await new Promise((r) => setTimeout(r, 500));
            }
            return undefined;
          })(),
        ]);
        assert.ok(seen, "an event arrived for a labelled container");
        if (seen.id) {
          const info = await rt().inspect(seen.id);
          assert.deepEqual(
            Object.entries(mine).filter(([k, v]) => info.labels[k] === v),
            Object.entries(mine),
            `event for ${seen.id} is about one of ours`,
          );
        }
      } finally {
        clearTimeout(timer);
        controller.abort();
        for (const id of ids)
          await rt()
            .remove(id, { force: true })
            .catch(() => {});
      }
    },
    execStdin: async () => {
      // Covered by "execs with stdin and reports the exit code".
    },
    tty: async () => {
      const s = spec(["sh", "-c", "test -t 1 && echo tty; echo err >&2"], { tty: true });
      if (!rt().capabilities.tty) return unsupported("tty", () => rt().run(s));
      const res = await rt().run(s);
      // With a terminal, both streams come out as one.
      assert.match(text(res.stdout), /tty\r?\n/);
      assert.match(text(res.stdout), /err/);
    },
    pause: async () => {
      const id = await rt().create(spec(["sleep", "300"]));
      try {
        await rt().start(id);
        if (!rt().capabilities.pause) return await unsupported("pause", () => rt().pause(id));
        await rt().pause(id);
        assert.equal((await rt().inspect(id)).state, "paused");
        await rt().unpause(id);
        assert.equal((await rt().inspect(id)).state, "running");
      } finally {
        await rt().remove(id, { force: true });
      }
    },
    signals: async () => {
      const id = await rt().create(spec(["sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.1; done"]));
      try {
        await rt().start(id);
        await new Promise((r) => setTimeout(r, 300));
        if (!rt().capabilities.signals) return await unsupported("signals", () => rt().kill(id, "SIGUSR1"));
        await rt().kill(id, "SIGUSR1");
        assert.equal((await rt().wait(id)).exitCode, 42);
      } finally {
        await rt().remove(id, { force: true });
      }
    },
  };
  test.describe("capabilities: each works or is UnsupportedError", () => {
    for (const [name, check] of Object.entries(checks)) test.it(name, check, timeout);
  });
}
