import { describe, expect, it } from "vitest";
import {
  AbortedError,
  ConflictError,
  NotFoundError,
  UnsupportedError,
  ValidationError,
} from "../src/errors.js";
import {
  adapterErrors,
  CAPABILITIES,
  capabilitiesWithout,
  check,
  deadline,
  endpointOf,
  OutputCollector,
  onAbort,
  type RunSteps,
  runContainer,
  signalOnly,
  sleep,
} from "../src/internal.js";

const errors = adapterErrors("testbed");

describe("adapterErrors", () => {
  it("stamps the operation and backend on every error it makes", () => {
    const e = errors.error(ConflictError, "remove", "container x is running", { status: 409 });
    expect(e).toBeInstanceOf(ConflictError);
    expect(e.message).toBe("remove: container x is running");
    expect([e.operation, e.backend, e.status]).toEqual(["remove", "testbed", 409]);
    const u = errors.unsupported("pause", "no pause here");
    expect(u).toBeInstanceOf(UnsupportedError);
    expect([u.message, u.backend]).toEqual(["pause: no pause here", "testbed"]);
    expect(errors.at("run")).toEqual({ operation: "run", backend: "testbed" });
  });

  it("throws the AbortedError of an aborted signal, with its reason as the cause", () => {
    const ac = new AbortController();
    expect(() => errors.throwIfAborted("wait", ac.signal)).not.toThrow();
    ac.abort("enough");
    const thrown = (() => {
      try {
        errors.throwIfAborted("wait", ac.signal);
      } catch (err) {
        return err;
      }
    })();
    expect(thrown).toBeInstanceOf(AbortedError);
    expect((thrown as AbortedError).cause).toBe("enough");
    expect((thrown as AbortedError).message).toBe("wait: aborted");
  });
});

describe("deadline", () => {
  it("passes the caller's signal through when there is no deadline", () => {
    const ac = new AbortController();
    const d = deadline(ac.signal, undefined);
    expect(d.signal).toBe(ac.signal);
    d.dispose();
  });

  it("fires at the deadline and says it expired", async () => {
    const d = deadline(undefined, 20);
    await new Promise((r) => d.signal?.addEventListener("abort", r));
    expect(d.expired).toBe(true);
    d.dispose();
  });

  it("fires on the caller's abort, not expired, and a disposed deadline never fires", async () => {
    const ac = new AbortController();
    const d = deadline(ac.signal, 10_000);
    ac.abort();
    expect(d.signal?.aborted).toBe(true);
    expect(d.expired).toBe(false);
    d.dispose();
    const quiet = deadline(undefined, 10);
    quiet.dispose();
    await new Promise((r) => setTimeout(r, 40));
    expect(quiet.signal?.aborted).toBe(false);
  });
});

describe("onAbort and sleep", () => {
  it("calls back once, at once for a fired signal, and not after dispose", () => {
    let calls = 0;
    const ac = new AbortController();
    const l = onAbort(ac.signal, () => calls++);
    ac.abort();
    ac.abort();
    expect(calls).toBe(1);
    l.dispose();
    onAbort(ac.signal, () => calls++);
    expect(calls).toBe(2);
    const other = new AbortController();
    onAbort(other.signal, () => calls++).dispose();
    other.abort();
    expect(calls).toBe(2);
  });

  it("sleeps, or rejects with the given error on abort", async () => {
    await expect(sleep(5, undefined, () => new Error("no"))).resolves.toBeUndefined();
    const ac = new AbortController();
    const slept = sleep(10_000, ac.signal, () => errors.aborted("wait", ac.signal));
    ac.abort();
    await expect(slept).rejects.toBeInstanceOf(AbortedError);
  });

  it("signalOnly keeps only the signal", () => {
    const signal = new AbortController().signal;
    expect(signalOnly({ signal })).toEqual({ signal });
    expect(signalOnly(undefined)).toEqual({});
    expect(Object.keys(signalOnly({ signal: undefined }))).toEqual([]);
  });
});

describe("OutputCollector", () => {
  it("collects each stream and hands every entry to onOutput, skipping other streams", async () => {
    const seen: string[] = [];
    const out = new OutputCollector((e) => seen.push(`${e.stream}:${Buffer.from(e.data)}`));
    async function* entries() {
      yield { stream: "stdout", data: Buffer.from("a") };
      yield { stream: "stdin", data: Buffer.from("x") };
      yield { stream: "stderr", data: Buffer.from("b") };
      yield { stream: "stdout", data: Buffer.from("c") };
    }
    await out.drain(entries());
    const { stdout, stderr } = out.result();
    expect([stdout.toString(), stderr.toString()]).toEqual(["ac", "b"]);
    expect(seen).toEqual(["stdout:a", "stderr:b", "stdout:c"]);
  });
});

describe("runContainer", () => {
  function steps(log: string[], over: Partial<RunSteps> = {}): RunSteps {
    return {
      ensureImage: async () => void log.push("ensureImage"),
      create: async () => {
        log.push("create");
        return "c1";
      },
      execute: async (id, output) => {
        log.push(`execute ${id}`);
        output.push({ stream: "stdout", data: Buffer.from("hi") });
        return 3;
      },
      remove: async (id) => void log.push(`remove ${id}`),
      discard: async (id) => void log.push(`discard ${id}`),
      ...over,
    };
  }

  it("pulls, creates, executes and removes, and returns the exit code and output", async () => {
    const log: string[] = [];
    const r = await runContainer(errors, {}, steps(log));
    expect(log).toEqual(["ensureImage", "create", "execute c1", "remove c1"]);
    expect([r.id, r.exitCode, Buffer.from(r.stdout).toString(), r.stderr.length]).toEqual(["c1", 3, "hi", 0]);
  });

  it("honours pull: false and remove: false", async () => {
    const log: string[] = [];
    await runContainer(errors, { pull: false, remove: false }, steps(log));
    expect(log).toEqual(["create", "execute c1"]);
  });

  it("discards what it created when a step fails, and rethrows that failure", async () => {
    const log: string[] = [];
    const failure = new NotFoundError("gone");
    const run = runContainer(
      errors,
      {},
      steps(log, {
        execute: async () => {
          throw failure;
        },
      }),
    );
    await expect(run).rejects.toBe(failure);
    expect(log).toEqual(["ensureImage", "create", "discard c1"]);
  });

  it("turns any failure after an abort into an AbortedError, after discarding", async () => {
    const log: string[] = [];
    const ac = new AbortController();
    const failure = new Error("socket closed");
    const run = runContainer(
      errors,
      { signal: ac.signal },
      steps(log, {
        execute: async () => {
          ac.abort();
          throw failure;
        },
        discard: async () => {
          log.push("discard");
          throw new Error("discard failing is not the caller's problem");
        },
      }),
    );
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as AbortedError).cause).toBe(failure);
    expect((err as AbortedError).backend).toBe("testbed");
    expect(log).toEqual(["ensureImage", "create", "discard"]);
  });

  it("creates nothing when aborted before the create", async () => {
    const log: string[] = [];
    const ac = new AbortController();
    ac.abort();
    await expect(runContainer(errors, { signal: ac.signal }, steps(log))).rejects.toBeInstanceOf(
      AbortedError,
    );
    expect(log).toEqual(["ensureImage"]);
  });
});

describe("endpointOf", () => {
  const info = (over: object = {}) => ({
    id: "c1",
    name: "c1",
    image: "i",
    state: "running",
    labels: {},
    ports: [
      { containerPort: 80, protocol: "tcp" as const, hostIp: "::", hostPort: 3001 },
      { containerPort: 80, protocol: "tcp" as const, hostIp: "0.0.0.0", hostPort: 3000 },
      { containerPort: 53, protocol: "udp" as const, hostIp: "127.0.0.2", hostPort: 5353 },
      { containerPort: 81, protocol: "tcp" as const, hostIp: "::", hostPort: 3002 },
      { containerPort: 82, protocol: "tcp" as const, hostIp: "", hostPort: 3003 },
    ],
    ...over,
  });
  it("gives loopback for a port bound on every address (IPv4 first), else the bound address", () => {
    expect(endpointOf(errors, info(), 80)).toEqual({ host: "127.0.0.1", port: 3000 });
    expect(endpointOf(errors, info(), 81)).toEqual({ host: "::1", port: 3002 });
    expect(endpointOf(errors, info(), 82)).toEqual({ host: "127.0.0.1", port: 3003 });
    expect(endpointOf(errors, info(), 53, "udp")).toEqual({ host: "127.0.0.2", port: 5353 });
  });
  it("refuses a port not published, and a container not running", () => {
    expect(() => endpointOf(errors, info(), 53)).toThrow(NotFoundError);
    expect(() => endpointOf(errors, info(), 9)).toThrow("publishes no port 9/tcp");
    expect(() => endpointOf(errors, info({ state: "exited" }), 80)).toThrow(ConflictError);
    // A host address that is not an IP address (a hostile daemon's) is never dialled.
    const odd = info({
      ports: [{ containerPort: 80, protocol: "tcp", hostIp: "evil.example\r\n", hostPort: 1 }],
    });
    expect(() => endpointOf(errors, odd, 80)).toThrow(NotFoundError);
  });
});

describe("check.waitFor", () => {
  const at = { operation: "waitFor", backend: "testbed" };
  it("copies a probe, one kind only, and takes the state out of a RegExp", () => {
    const re = /ready/gy;
    re.lastIndex = 3;
    const [, probe] = check.waitFor(at, "c1", { log: re, stream: "stderr" }, undefined);
    expect(probe).toEqual({ log: /ready/, stream: "stderr" });
    expect((probe as { log: RegExp }).log).not.toBe(re);
    expect(check.waitFor(at, "c1", { http: { port: 80, path: "/a?b=1" } }, { timeout: 5 })).toEqual([
      "c1",
      { http: { port: 80, path: "/a?b=1" } },
      { timeout: 5 },
    ]);
    expect(check.waitFor(at, "c1", { exec: ["true"] }, undefined)[1]).toEqual({ exec: ["true"] });
  });
  it("refuses what is not one well-formed probe", () => {
    for (const bad of [
      undefined,
      {},
      { log: "x", port: 1 },
      { log: "" },
      { log: "x", stream: "stdin" },
      { port: 0 },
      { port: 70000 },
      { http: { path: "/" } },
      { http: { port: 80, path: "no-slash" } },
      { http: { port: 80, path: "/a b" } },
      { http: { port: 80, path: "/a\r\nHost: x" } },
      { http: { port: 80, status: 99 } },
      { exec: [] },
      { log: "x".repeat(5000) },
    ]) {
      expect(() => check.waitFor(at, "c1", bad, undefined), JSON.stringify(bad)).toThrow(ValidationError);
    }
    expect(() => check.waitFor(at, "c1", { log: "x" }, { interval: 0 })).toThrow(ValidationError);
    expect(() => check.endpoint(at, "c1", 0, undefined)).toThrow(ValidationError);
    expect(() => check.endpoint(at, "c1", 80, { protocol: "sctp" })).toThrow(ValidationError);
  });
});

describe("capabilitiesWithout", () => {
  it("declares every capability, true but those named", () => {
    const caps = capabilitiesWithout("ports", "pause");
    expect(Object.keys(caps)).toEqual([...CAPABILITIES]);
    expect(
      Object.entries(caps)
        .filter(([, v]) => !v)
        .map(([k]) => k),
    ).toEqual(["ports", "pause"]);
  });
});
