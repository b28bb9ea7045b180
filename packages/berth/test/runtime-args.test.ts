// The same bad arguments give the same typed error on every backend, before any daemon call: each runtime
// here points at a socket that does not exist, so anything that reached for a daemon would be an
// UnavailableError. The cases are inputs the runtime-surface fuzz (test/fuzz/runtime-surface.ts) found
// escaping as raw TypeErrors, RangeErrors or a caller's own errors (one, exec's command, as an uncaught
// exception from a timer) before runtime-core's call-args.ts.
import { ContainerdClient, ContainerdRuntime } from "@berth/containerd-client";
import { CriClient, CriRuntime } from "@berth/crio-client";
import { DockerClient, DockerRuntime } from "@berth/docker-client";
import { AbortedError, type Runtime, UnavailableError, ValidationError } from "@berth/runtime-core";
import { afterAll, describe, expect, it } from "vitest";

const nowhere = "/nonexistent/berth-runtime-args";
const runtimes: Array<[string, Runtime]> = [
  [
    "docker",
    new DockerRuntime(new DockerClient({ host: `unix://${nowhere}/docker.sock`, apiVersion: "1.41" })),
  ],
  [
    "podman",
    new DockerRuntime(
      new DockerClient({ host: `unix://${nowhere}/podman.sock`, apiVersion: "1.41", backend: "podman" }),
      "podman",
    ),
  ],
  ["containerd", new ContainerdRuntime(new ContainerdClient({ address: `${nowhere}/containerd.sock` }))],
  ["cri", new CriRuntime(new CriClient({ endpoint: `unix://${nowhere}/cri.sock` }))],
];
afterAll(() => Promise.all(runtimes.map(([, rt]) => rt.close())));

const image = "127.0.0.1:5000/busybox:latest";
const revoked = () => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};
const throwing = () =>
  new Proxy(
    {},
    {
      get: () => {
        throw new Error("a caller's getter");
      },
    },
  );

/** The call's outcome: its error (an iterable is read for its first entry). */
async function outcome(call: () => unknown): Promise<unknown> {
  try {
    const result = call();
    if (result && typeof (result as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") {
      await (result as AsyncIterable<unknown>)[Symbol.asyncIterator]().next();
    } else {
      await result;
    }
  } catch (err) {
    return err;
  }
  return undefined;
}

// [what the fuzz passed, the call, what the error says]; before call-args.ts, what each did is in the comment.
const cases: Array<[string, (rt: Runtime) => unknown, string]> = [
  // TypeError: Cannot read properties of null (reading 'signal' / 'labels' / 'env')
  ["info(null)", (rt) => rt.info(null as never), "info: options must be an object, got null"],
  // TypeError: Cannot perform 'get' on a proxy that has been revoked
  [
    "inspect(id, revoked Proxy)",
    (rt) => rt.inspect("x", revoked()),
    "inspect: options cannot be read (TypeError",
  ],
  // Error: a caller's getter (the caller's own error, untyped)
  [
    "start(id, throwing Proxy)",
    (rt) => rt.start("x", throwing()),
    "start: options.signal cannot be read (Error",
  ],
  // TypeError: The "signals[1]" argument must be an instance of AbortSignal (exec); Value of "this" must be of
  // type AbortSignal (info, list, remove)
  [
    "exec(id, cmd, { signal: {} })",
    (rt) => rt.exec("x", ["true"], { signal: {} as never }),
    "must be an AbortSignal",
  ],
  // TypeError: cmd.join is not a function, thrown from a timer: an uncaught exception
  [
    "exec(id, string, { timeout })",
    (rt) => rt.exec("x", "ls -l" as never, { timeout: 1 }),
    'command must be an array, got "ls -l"',
  ],
  // TypeError: options.since.getTime is not a function
  [
    "logs(id, { since: string })",
    (rt) => rt.logs("x", { since: "yesterday" as never }),
    'options.since must be a valid Date, got "yesterday"',
  ],
  // TypeError: Cannot convert a Symbol value to a string
  [
    "list({ labels: { a: symbol } })",
    (rt) => rt.list({ labels: { a: Symbol("x") as never } }),
    'options.labels["a"] must be a string, got a symbol',
  ],
  [
    "events({ labels: array })",
    (rt) => rt.events({ labels: ["a=b"] as never }),
    "options.labels must be an object, got an array",
  ],
  // TypeError: object is not iterable (cannot read property Symbol(Symbol.iterator))
  [
    "create({ command: {} })",
    (rt) => rt.create({ image, command: {} as never }),
    "spec.command must be an array, got an object",
  ],
  // TypeError: spec.workdir.startsWith is not a function
  [
    "run({ workdir: 5 })",
    (rt) => rt.run({ image, workdir: 5 as never }),
    "spec.workdir must be a string, got 5",
  ],
  // TypeError: Cannot read properties of null (reading 'target')
  [
    "create({ mounts: [null] })",
    (rt) => rt.create({ image, mounts: [null as never] }),
    "spec.mounts[0] must be an object, got null",
  ],
  // TypeError: Do not know how to serialize a BigInt
  [
    "create({ ports: [{ containerPort: 80n }] })",
    (rt) => rt.create({ image, ports: [{ containerPort: 80n as never }] }),
    "spec.ports[0].containerPort must be an integer",
  ],
  // RangeError: Invalid string length (JSON.stringify of 2^32-1 holes)
  [
    "create({ command: new Array(2 ** 32 - 1) })",
    (rt) => rt.create({ image, command: new Array(2 ** 32 - 1) }),
    "spec.command has 4294967295 elements",
  ],
  // RangeError: Invalid array length
  [
    "stop(id, { graceSeconds: 1e12 })",
    (rt) => rt.stop("x", { graceSeconds: 1e12 }),
    "options.graceSeconds must be an integer from 0 to 2147483",
  ],
  ["kill(id, 9)", (rt) => rt.kill("x", 9 as never), "kill: signalName must be a string, got 9"],
  [
    "remove(id, { force: 'yes' })",
    (rt) => rt.remove("x", { force: "yes" as never }),
    "options.force must be true or false",
  ],
  ["pause('../../images/x')", (rt) => rt.pause("../../images/x"), 'id "../../images/x" is not an id or name'],
  ["stats(5)", (rt) => rt.stats(5 as never), "stats: id must be a string, got 5"],
  [
    "wait(id of 4 MiB)",
    (rt) => rt.wait("a".repeat(4 * 1024 * 1024)),
    "4194304 characters long (at most 256)",
  ],
  ["pull(4 MiB reference)", (rt) => rt.pull(`127.0.0.1:5000/${"a".repeat(4 * 1024 * 1024)}`), "at most 1024"],
  [
    "pull(image, { auth: string })",
    (rt) => rt.pull(image, { auth: "user:password" as never }),
    "options.auth must be an object",
  ],
  [
    "run(spec, { onOutput: 5 })",
    (rt) => rt.run({ image }, { onOutput: 5 as never }),
    "options.onOutput must be a function",
  ],
];

describe.each(runtimes)("%s: bad arguments are refused before any daemon call", (backend, rt) => {
  it.each(cases)("%s", async (_, call, words) => {
    const err = await outcome(() => call(rt));
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toContain(words);
    expect((err as ValidationError).backend).toBe(backend);
  });

  it("an aborted signal is an AbortedError before anything starts", async () => {
    const err = await outcome(() => rt.inspect("x", { signal: AbortSignal.abort() }));
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as AbortedError).backend).toBe(backend);
  });

  it("(sound arguments do reach for the daemon, which is not there)", async () => {
    expect(await outcome(() => rt.inspect("x"))).toBeInstanceOf(UnavailableError);
  });
});

it("the same message on every backend", async () => {
  for (const [, call] of cases) {
    const messages = new Set<string>();
    for (const [, rt] of runtimes) messages.add(((await outcome(() => call(rt))) as Error).message);
    expect([...messages]).toHaveLength(1);
  }
});
