// Bad responses: a proxy between each client and its real daemon truncates, corrupts or stalls the
// daemon's answers (multiplexed frames, NDJSON lines, chunked JSON bodies, gRPC messages). Every fault
// must end the call with a typed berth error, within a bound, with no uncaught exception or unhandled
// rejection on the way.
import { randomBytes } from "node:crypto";
import { ContainerdClient, contentV1, removeNamespace, sha256 } from "@berth/containerd-client";
import { CriClient } from "@berth/crio-client";
import { collect, DockerClient, DockerRuntime, execRun, pull } from "@berth/docker-client";
import {
  AbortedError,
  type BerthError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fault, FaultProxy } from "./proxy.js";

const env = process.env as Record<string, string>;
const image = env.BERTH_TEST_IMAGE ?? "";
const run = randomBytes(4).toString("hex");
const label = { "berth.test": run };

/** How long a faulted call may take to settle: generous, these machines are shared. */
const BOUND_MS = 5_000;
/** Client deadlines used against stalls. */
const DEADLINE_MS = 500;
/** A stall the clients must ride out, well inside their deadlines. */
const DELAY_MS = 300;

type Backend = "docker" | "containerd" | "cri";
type ErrorClass = abstract new (...args: never[]) => BerthError;

const tally = {
  faults: { docker: 0, containerd: 0, cri: 0 } as Record<Backend, number>,
  typed: 0,
  delays: 0,
  intact: 0,
  hangs: 0,
  crashes: 0,
  slowest: 0,
};

// Anything uncaught while a fault is in play counts as a crash (vitest also fails the run for it).
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => {
  uncaught.push(err);
};

type Outcome = { hung: true } | { value: unknown } | { error: unknown };

/** Start a proxy to `target` with `fault`, run `act` through it, and record how it ended. */
async function throughProxy(
  target: string,
  fault: Fault,
  act: (proxy: FaultProxy) => Promise<unknown>,
): Promise<{ outcome: Outcome; ms: number; injected: number; crashes: unknown[] }> {
  const proxy = await FaultProxy.start({ target, fault });
  const before = uncaught.length;
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<{ hung: true }>((resolve) => {
    timer = setTimeout(() => resolve({ hung: true }), BOUND_MS);
  });
  let outcome: Outcome;
  try {
    outcome = await Promise.race([
      act(proxy).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      bound,
    ]);
  } finally {
    clearTimeout(timer);
    await proxy.close();
  }
  const ms = performance.now() - started;
  // Late errors (a socket closing after the call settled) surface on the next turns.
  await new Promise((r) => setTimeout(r, 50));
  const crashes = uncaught.slice(before);
  if ("hung" in outcome) tally.hangs++;
  tally.crashes += crashes.length;
  tally.slowest = Math.max(tally.slowest, ms);
  expect(proxy.injected, "the fault never fired: the test proves nothing").toBeGreaterThan(0);
  expect(outcome, `settled within ${BOUND_MS} ms`).not.toHaveProperty("hung");
  expect(crashes.map(String), "uncaught exceptions / unhandled rejections").toEqual([]);
  expect(ms).toBeLessThan(BOUND_MS);
  return { outcome, ms, injected: proxy.injected, crashes };
}

/** A fault that must end the call with `expected`, in bounded time, with nothing uncaught. */
async function inject(
  backend: Backend,
  target: string,
  fault: Fault,
  expected: ErrorClass,
  act: (proxy: FaultProxy) => Promise<unknown>,
): Promise<BerthError> {
  const { outcome } = await throughProxy(target, fault, act);
  tally.faults[backend]++;
  const error = "error" in outcome ? outcome.error : undefined;
  if (error instanceof expected) tally.typed++;
  expect(outcome, "the call failed").toHaveProperty("error");
  expect(error, String(error)).toBeInstanceOf(expected);
  return error as BerthError;
}

/** A delay the call must ride out: it answers, intact. */
async function endure<T>(target: string, fault: Fault, act: (proxy: FaultProxy) => Promise<T>): Promise<T> {
  const { outcome } = await throughProxy(target, fault, act);
  tally.delays++;
  expect(outcome, "error" in outcome ? String(outcome.error) : "").toHaveProperty("value");
  tally.intact++;
  return (outcome as { value: T }).value;
}

beforeAll(() => {
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);
});

afterAll(() => {
  process.off("uncaughtException", onUncaught);
  process.off("unhandledRejection", onUncaught);
  const { docker, containerd, cri } = tally.faults;
  const total = docker + containerd + cri;
  console.log(
    `bad responses: ${total} faults injected (docker ${docker}, containerd ${containerd}, cri ${cri}), ` +
      `${tally.typed} typed errors, ${tally.hangs} hangs, ${tally.crashes} crashes; ` +
      `${tally.delays} delayed answers (${DELAY_MS} ms), ${tally.intact} read intact; ` +
      `slowest call settled in ${Math.round(tally.slowest)} ms (bound ${BOUND_MS} ms)`,
  );
});

describe("docker through a faulty proxy", () => {
  const host = env.DOCKER_HOST ?? "";
  const direct = new DockerClient({ host });
  let version = "";
  let id = "";
  let since = 0;

  /** A client through the proxy, with the API version pinned so no ping goes through it. */
  async function via<T>(proxy: FaultProxy, fn: (docker: DockerClient) => Promise<T>): Promise<T> {
    const docker = new DockerClient({ host: proxy.address, apiVersion: version });
    try {
      return await fn(docker);
    } finally {
      await docker.pool.destroy();
    }
  }

  const dockerCase = (fault: Fault, expected: ErrorClass, fn: (docker: DockerClient) => Promise<unknown>) =>
    inject("docker", host, fault, expected, (proxy) => via(proxy, fn));

  beforeAll(async () => {
    since = Math.floor(Date.now() / 1000) - 1;
    version = await direct.apiVersion();
    await pull(direct, image);
    // Three lines and one on stderr, then a tick every 200 ms: fixed first frames for logs, a live
    // stream for attach and follow.
    const created = await direct.containers.create({
      name: `berth-proxy-${run}`,
      body: {
        Image: image,
        Cmd: [
          "sh",
          "-c",
          "echo line1; echo line2; echo line3; echo err >&2; while :; do echo tick; sleep 0.2; done",
        ],
        Labels: label,
      },
    });
    id = created.Id;
    await direct.containers.start({ id });
    // Wait for the first lines, so a logs body starts with them.
    for (let i = 0; i < 50; i++) {
      const { stdout } = await collect(await direct.containers.logs({ id, stdout: true }));
      if (stdout.includes("tick")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  afterAll(async () => {
    const list = await direct.containers.list({ all: true, filters: { label: [`berth.test=${run}`] } });
    for (const c of list) await direct.containers.remove({ id: c.Id ?? "", force: true }).catch(() => {});
    await direct.close();
  });

  const logs = (docker: DockerClient) =>
    docker.containers.logs({ id, stdout: true, stderr: true }).then((s) => collect(s));

  it("logs: a connection cut inside a frame is an UnavailableError", async () => {
    await dockerCase({ kind: "truncate", anchor: "body", at: 10, match: "/logs?" }, UnavailableError, logs);
  });

  it("logs: a frame header claiming an absurd length is a ProtocolError when the body ends", async () => {
    const fault: Fault = { kind: "corrupt", anchor: "body", at: 4, bytes: [0x7f, 0xff, 0xff, 0xff] };
    await dockerCase({ ...fault, match: "/logs?" }, ProtocolError, logs);
  });

  it("logs: a frame header with an unknown stream id is a ProtocolError", async () => {
    // The second frame (the first is 8 + "line1\n"): the first decides multiplexed vs raw on 1.41.
    const err = await dockerCase(
      { kind: "corrupt", anchor: "body", at: 14, bytes: [9], match: "/logs?" },
      ProtocolError,
      logs,
    );
    expect(err.message).toMatch(/malformed multiplexed stream header/);
  });

  it("logs --follow stalled after the headers ends with an AbortedError when the signal fires", async () => {
    await dockerCase(
      { kind: "stall", anchor: "body", at: 0, match: "/logs?" },
      AbortedError,
      async (docker) => {
        const signal = AbortSignal.timeout(DEADLINE_MS);
        const stream = await docker.containers.logs({ id, follow: true, stdout: true }, { signal });
        return collect(stream);
      },
    );
  });

  it("exec output cut inside a frame is a ProtocolError (the hijacked body ends at EOF)", async () => {
    const err = await dockerCase(
      { kind: "truncate", anchor: "body", at: 10, match: "/start" },
      ProtocolError,
      async (docker) => {
        const { Id } = await docker.exec.create({
          id,
          body: {
            Cmd: ["sh", "-c", "echo hello-from-exec; echo more"],
            AttachStdout: true,
            AttachStderr: true,
          },
        });
        return collect(await docker.exec.start({ id: Id, body: { Detach: false, Tty: false } }));
      },
    );
    expect(err.message).toMatch(/ended inside a frame/);
  });

  it("attach (upgraded connection): a corrupted frame header is a ProtocolError", async () => {
    // Each tick is one frame of 8 + "tick\n" = 13 bytes; corrupt the second's stream id.
    await dockerCase(
      { kind: "corrupt", anchor: "body", at: 13, bytes: [7], match: "/attach?" },
      ProtocolError,
      async (docker) => {
        const stream = await docker.containers.attach({ id, stream: true, stdout: true });
        return collect(stream);
      },
    );
  });

  it("pull progress (NDJSON): a line corrupted into invalid JSON is a ProtocolError", async () => {
    const [repo, tag] = splitTag(image);
    await dockerCase(
      { kind: "corrupt", anchor: "body", at: 0, bytes: [0x23], match: "/images/create?" },
      ProtocolError,
      async (docker) => {
        for await (const _ of await docker.images.pull({ fromImage: repo, tag })) {
          // progress
        }
      },
    );
  });

  it("events (NDJSON) cut in the middle of a line is an UnavailableError", async () => {
    await dockerCase(
      { kind: "truncate", anchor: "body", at: 20, match: "/events?" },
      UnavailableError,
      async (docker) => {
        const until = Math.floor(Date.now() / 1000) + 1;
        for await (const _ of await docker.system.events({ since: String(since), until: String(until) })) {
          // events
        }
      },
    );
  });

  it("inspect (chunked JSON) cut mid-body is an UnavailableError", async () => {
    await dockerCase(
      { kind: "truncate", anchor: "body", at: 100, match: "/json" },
      UnavailableError,
      (docker) => docker.containers.inspect({ id }),
    );
  });

  it("inspect (chunked JSON) with a corrupted chunk-size line is a ProtocolError", async () => {
    await dockerCase({ kind: "chunk-size", at: 0, match: "/json" }, ProtocolError, (docker) =>
      docker.containers.inspect({ id }),
    );
  });

  it("images list (Content-Length JSON) corrupted into invalid JSON is a ProtocolError", async () => {
    await dockerCase(
      { kind: "corrupt", anchor: "body", at: 0, bytes: [0x23], match: "/images/json" },
      ProtocolError,
      (docker) => docker.images.list({}),
    );
  });

  it("inspect stalled mid-body is a TimeoutError at the client's timeout", async () => {
    await dockerCase({ kind: "stall", anchor: "body", at: 50, match: "/json" }, TimeoutError, (docker) =>
      docker.containers.inspect({ id }, { timeout: DEADLINE_MS }),
    );
  });

  it("a response stalled before its status line is a TimeoutError at the client's timeout", async () => {
    await dockerCase({ kind: "stall", anchor: "response", at: 0, match: "/json" }, TimeoutError, (docker) =>
      docker.containers.list({ all: true }, { timeout: DEADLINE_MS }),
    );
  });

  it("run() whose create gets no answer is a TimeoutError, and the container created anyway is removed", async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const mark = { ...label, "berth.late-create": run };
    // The create reaches dockerd, which creates the container; its answer stalls past the deadline.
    const error = await inject(
      "docker",
      host,
      { kind: "stall", anchor: "response", at: 0, match: "/containers/create" },
      TimeoutError,
      async (proxy) => {
        const docker = new DockerClient({ host: proxy.address, apiVersion: version, timeout: DEADLINE_MS });
        const rt = new DockerRuntime(docker);
        try {
          return await rt.run({ image, command: ["true"], labels: mark }, { pull: false });
        } finally {
          await rt.close();
        }
      },
    );
    expect(error.message).toMatch(/create/);
    // The daemon did create it (so without the late-create sweep it would be left), and it is gone.
    const until = Math.ceil(Date.now() / 1000) + 1;
    const seen: string[] = [];
    const filters = { type: ["container"], label: [`berth.late-create=${run}`] };
    for await (const e of await direct.system.events({
      since: String(since),
      until: String(until),
      filters,
    })) {
      if (e.Action === "create" || e.Action === "destroy")
        seen.push(`${e.Action} ${e.Actor?.Attributes?.name}`);
    }
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatch(/^create berth-[0-9a-f]{12}$/);
    expect(seen[1]).toBe(seen[0]?.replace("create", "destroy"));
    const left = await direct.containers.list({
      all: true,
      filters: { label: [`berth.late-create=${run}`] },
    });
    expect(left).toEqual([]);
  });

  it("inspect delayed mid-body (a slow daemon) answers intact", async () => {
    const info = await endure(
      host,
      { kind: "stall", anchor: "body", at: 50, ms: DELAY_MS, match: "/json" },
      (p) => via(p, (docker) => docker.containers.inspect({ id }, { timeout: 3_000 })),
    );
    expect(info.Id).toBe(id);
  });

  it("logs delayed between frames answer intact", async () => {
    const out = await endure(
      host,
      { kind: "stall", anchor: "body", at: 14, ms: DELAY_MS, match: "/logs?" },
      (p) => via(p, logs),
    );
    expect(out.stdout.toString()).toMatch(/^line1\nline2\nline3\n/);
    expect(out.stderr.toString()).toBe("err\n");
  });

  it("logs (streamed) with a corrupted chunk-size line is a ProtocolError", async () => {
    // Each log line is its own chunk: the second chunk's size line follows body offset 14.
    await dockerCase({ kind: "chunk-size", at: 1, match: "/logs?" }, ProtocolError, logs);
  });

  it("a garbled status line is a ProtocolError", async () => {
    await dockerCase(
      { kind: "corrupt", anchor: "response", at: 0, bytes: [0x58], match: "/json" },
      ProtocolError,
      (docker) => docker.containers.inspect({ id }),
    );
  });

  it("execRun's timeout ends an exec whose output stalls: a TimeoutError", async () => {
    await dockerCase({ kind: "stall", anchor: "body", at: 0, match: "/start" }, TimeoutError, (docker) =>
      execRun(docker, id, ["echo", "never-seen"], { timeout: DEADLINE_MS }),
    );
  });
});

/** "host:port/repo:tag" → ["host:port/repo", "tag"]. */
function splitTag(ref: string): [string, string] {
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, "latest"];
}

describe("containerd gRPC through a faulty proxy", () => {
  const address = env.CONTAINERD_ADDRESS ?? "";
  const namespace = `berth-proxy-${run}`;
  const direct = ContainerdClient.fromEnv().withNamespace(namespace);
  const blob = randomBytes(256 * 1024);
  const digest = sha256(blob);

  const ctdCase = (fault: Fault, expected: ErrorClass, fn: (c: ContainerdClient) => Promise<unknown>) =>
    inject("containerd", address, fault, expected, async (proxy) => {
      const c = new ContainerdClient({ address: proxy.address, namespace });
      try {
        return await fn(c);
      } finally {
        c.close();
      }
    });

  const readAll = async (c: ContainerdClient, signal?: AbortSignal) => {
    const parts: Uint8Array[] = [];
    for await (const r of c.content.read({ digest }, signal ? { signal } : {})) parts.push(r.data);
    return Buffer.concat(parts);
  };

  beforeAll(async () => {
    // A blob of our own to stream back with Content.Read (several messages, many DATA frames). Written
    // with the raw Write dialogue (STAT, WRITE, COMMIT), so only the gRPC layer is relied on here.
    const { WriteAction } = contentV1;
    const base = { ref: `berth-proxy-${run}`, total: BigInt(blob.byteLength), expected: digest };
    const requests = [
      { ...base, action: WriteAction.STAT },
      { ...base, action: WriteAction.WRITE, offset: 0n, data: blob },
      {
        ...base,
        action: WriteAction.COMMIT,
        offset: BigInt(blob.byteLength),
        labels: { "containerd.io/gc.root": new Date().toISOString() },
      },
    ];
    // containerd answers each request before reading the next, so all three can be sent at once.
    for await (const _ of direct.content.write(requests, { timeout: 20_000 })) {
      // STAT, WRITE, COMMIT answers
    }
    expect((await direct.content.info({ digest })).info?.size).toBe(BigInt(blob.byteLength));
  });

  afterAll(async () => {
    await removeNamespace(direct).catch(() => {});
    direct.close();
  });

  it("Version with a corrupted protobuf is a ProtocolError", async () => {
    // DATA payload: [flag, length x4, protobuf]; byte 5 is the first field's tag.
    await ctdCase({ kind: "corrupt", anchor: "h2-data", at: 5, bytes: [0xff] }, ProtocolError, (c) =>
      c.version.version({}, { timeout: 2_000 }),
    );
  });

  it("Version cut inside its DATA frame is an UnavailableError", async () => {
    await ctdCase({ kind: "truncate", anchor: "h2-data", at: 3 }, UnavailableError, (c) =>
      c.version.version({}, { timeout: 2_000 }),
    );
  });

  it("Containers.List whose length prefix claims 2 GiB is a ProtocolError", async () => {
    await ctdCase(
      { kind: "corrupt", anchor: "h2-data", at: 1, bytes: [0x7f, 0xff, 0xff, 0xff] },
      ProtocolError,
      (c) => c.containers.list({}, { timeout: 2_000 }),
    );
  });

  it("Containers.List whose length prefix claims more than was sent is a ProtocolError", async () => {
    // The empty list is a 5-byte DATA payload [0, 0,0,0,0]: claim 16 bytes, send none.
    await ctdCase({ kind: "corrupt", anchor: "h2-data", at: 4, bytes: [0x10] }, ProtocolError, (c) =>
      c.containers.list({}, { timeout: 2_000 }),
    );
  });

  it("Content.Read delayed mid-stream answers intact", async () => {
    const read = await endure(
      address,
      { kind: "stall", anchor: "h2-data", at: 20_000, ms: DELAY_MS },
      async (p) => {
        const c = new ContainerdClient({ address: p.address, namespace });
        try {
          return await readAll(c);
        } finally {
          c.close();
        }
      },
    );
    expect(sha256(read)).toBe(digest);
  });

  it("Containers.List stalled before its message is a TimeoutError at the deadline", async () => {
    await ctdCase({ kind: "stall", anchor: "h2-data", at: 0 }, TimeoutError, (c) =>
      c.containers.list({}, { timeout: DEADLINE_MS }),
    );
  });

  it("Content.Read (server stream) cut mid-stream is an UnavailableError", async () => {
    await ctdCase({ kind: "truncate", anchor: "h2-data", at: 40_000 }, UnavailableError, (c) => readAll(c));
  });

  it("Content.Read (server stream) with a corrupted message is a ProtocolError", async () => {
    await ctdCase({ kind: "corrupt", anchor: "h2-data", at: 5, bytes: [0xff] }, ProtocolError, (c) =>
      readAll(c),
    );
  });

  it("Content.Read (server stream) stalled mid-stream ends with an AbortedError when the signal fires", async () => {
    await ctdCase({ kind: "stall", anchor: "h2-data", at: 20_000 }, AbortedError, (c) =>
      readAll(c, AbortSignal.timeout(DEADLINE_MS)),
    );
  });
});

describe("CRI gRPC through a faulty proxy", () => {
  const endpoint = env.CONTAINER_RUNTIME_ENDPOINT ?? "";

  const criCase = (fault: Fault, expected: ErrorClass, fn: (c: CriClient) => Promise<unknown>) =>
    inject("cri", endpoint, fault, expected, async (proxy) => {
      const c = new CriClient({ endpoint: proxy.address });
      try {
        return await fn(c);
      } finally {
        c.close();
      }
    });

  it("Version with a corrupted protobuf is a ProtocolError", async () => {
    await criCase({ kind: "corrupt", anchor: "h2-data", at: 5, bytes: [0xff] }, ProtocolError, (c) =>
      c.version({ timeout: 2_000 }),
    );
  });

  it("Version whose length prefix claims less than was sent is a ProtocolError", async () => {
    // The message is cut in two: its first 2 bytes, then the rest read as a second message.
    await criCase({ kind: "corrupt", anchor: "h2-data", at: 1, bytes: [0, 0, 0, 2] }, ProtocolError, (c) =>
      c.version({ timeout: 2_000 }),
    );
  });

  it("Status stalled before its message is a TimeoutError at the deadline", async () => {
    await criCase({ kind: "stall", anchor: "h2-data", at: 0 }, TimeoutError, (c) =>
      c.status({ timeout: DEADLINE_MS }),
    );
  });
});
