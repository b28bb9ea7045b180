// The Runtime methods' argument checks (call-args.ts), with the inputs the runtime-surface fuzz
// (test/fuzz/runtime-surface.ts) found escaping as raw TypeErrors and RangeErrors before they existed.
import { describe, expect, it } from "vitest";
import { AbortedError, ValidationError, validateContainerSpec } from "../src/index.js";
import {
  checkCallOptions,
  checkCreateArgs,
  checkEventsOptions,
  checkExecArgs,
  checkIdCall,
  checkKillArgs,
  checkListOptions,
  checkLogsArgs,
  checkPullArgs,
  checkRemoveArgs,
  checkRunArgs,
  checkStopArgs,
} from "../src/internal.js";

const at = { operation: "inspect", backend: "docker" };
const image = "127.0.0.1:5000/busybox:latest";

/** What `fn` threw (it must throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a throw");
}

function refused(fn: () => unknown, ...words: string[]): ValidationError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(ValidationError);
  for (const w of words) expect(err.message).toContain(w);
  return err as ValidationError;
}

const boom = () => {
  throw new Error("boom");
};
const revoked = () => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};
const throwingProxy = () => new Proxy({}, { get: boom, has: boom, ownKeys: boom, getPrototypeOf: boom });

describe("ids", () => {
  it.each([
    ["a number", 5, "id must be a string, got 5"],
    ["null", null, "id must be a string, got null"],
    ["missing", undefined, "id is required"],
    ["empty", "", "id must not be empty"],
    ["a NUL", "a\0b", "must not contain NUL"],
    ["a path", "../../images/x", "is not an id or name"],
    ["..", "..", "is not an id or name"],
    ["a lone surrogate", "x\ud800", "is not an id or name"],
    ["a symbol", Symbol("x"), "got a symbol"],
    ["4 MiB", "a".repeat(4 * 1024 * 1024), "4194304 characters long (at most 256)"],
  ])("refuses %s", (_, id, words) => {
    const err = refused(() => checkIdCall(at, id, undefined), words);
    expect(err.operation).toBe("inspect");
    expect(err.backend).toBe("docker");
  });

  it("passes a name or an id through", () => {
    expect(checkIdCall(at, "web-1", undefined)).toEqual(["web-1", {}]);
  });
});

describe("options", () => {
  it.each([
    // Each was a TypeError or the caller's own error out of an adapter.
    ["null", null, "options must be an object, got null"],
    ["an array", [], "options must be an object, got an array"],
    ["a revoked Proxy", revoked(), "options cannot be read (TypeError"],
    ["a Proxy that throws", throwingProxy(), "options.signal cannot be read (Error: boom)"],
    [
      "a getter that throws",
      {
        get signal() {
          return boom();
        },
      },
      "options.signal cannot be read",
    ],
    [
      "a signal that is not one",
      { signal: { aborted: false, addEventListener: 5 } },
      "must be an AbortSignal",
    ],
    [
      "AbortSignal.prototype alone",
      { signal: Object.create(AbortSignal.prototype) },
      "must be an AbortSignal",
    ],
    ["a Promise as signal", { signal: Promise.resolve() }, "must be an AbortSignal"],
  ])("refuses %s", (_, options, words) => {
    refused(() => checkCallOptions(at, options), words);
  });

  it("an aborted signal is an AbortedError before anything starts", () => {
    const err = thrown(() => checkIdCall(at, "x", { signal: AbortSignal.abort() }));
    expect(err).toBeInstanceOf(AbortedError);
    expect(err.message).toBe("inspect: aborted before it started");
  });

  it("copies what it read: a getter is read once", () => {
    let reads = 0;
    const signal = new AbortController().signal;
    const options = {
      get signal() {
        reads++;
        return reads === 1 ? signal : null;
      },
    };
    const [, checked] = checkIdCall(at, "x", options);
    expect(checked.signal).toBe(signal);
    expect(checked.signal).toBe(signal);
    expect(reads).toBe(1);
  });

  it("logs: since must be a valid Date, tail a count", () => {
    // Was "options.since.getTime is not a function".
    refused(
      () => checkLogsArgs(at, "x", { since: "yesterday" }),
      'options.since must be a valid Date, got "yesterday"',
    );
    refused(() => checkLogsArgs(at, "x", { since: new Date(Number.NaN) }), "got an invalid Date");
    refused(() => checkLogsArgs(at, "x", { tail: 1.5 }), "options.tail must be an integer");
    refused(() => checkLogsArgs(at, "x", { follow: "yes" }), "options.follow must be true or false");
    expect(checkLogsArgs(at, "x", { tail: 0, since: new Date(0) })[1]).toEqual({
      tail: 0,
      since: new Date(0),
    });
  });

  it("list and events: labels are a map of strings", () => {
    // Was "Cannot convert a Symbol value to a string" (a label filter built from the value).
    refused(
      () => checkListOptions(at, { labels: { a: Symbol("x") } }),
      'options.labels["a"] must be a string',
    );
    refused(
      () => checkEventsOptions(at, { labels: ["a=b"] }),
      "options.labels must be an object, got an array",
    );
    refused(() => checkListOptions(at, { all: 1 }), "options.all must be true or false");
    // A "__proto__" key stays a key (and pollutes nothing).
    const labels = JSON.parse('{"__proto__": "x"}');
    const checked = checkListOptions(at, { labels });
    expect(Object.keys(checked.labels ?? {})).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(checked.labels)).toBe(Object.prototype);
  });

  it("exec: the command is a non-empty array of strings; timeout, stdin, env of their types", () => {
    // "cmd.join is not a function" was thrown from a timer: an uncaught exception.
    refused(() => checkExecArgs(at, "x", "ls -l", { timeout: 1 }), 'command must be an array, got "ls -l"');
    refused(() => checkExecArgs(at, "x", [], {}), "command must name a program");
    refused(() => checkExecArgs(at, "x", [1], {}), "command[0] must be a string, got 1");
    refused(() => checkExecArgs(at, "x", new Array(3), {}), "command[0] must be a string, got undefined");
    refused(() => checkExecArgs(at, "x", ["true"], { timeout: -1 }), "options.timeout must be a number");
    refused(() => checkExecArgs(at, "x", ["true"], { timeout: 2 ** 31 }), "options.timeout must be a number");
    refused(
      () => checkExecArgs(at, "x", ["true"], { stdin: [1, 2] }),
      "options.stdin must be a string or a Uint8Array",
    );
    refused(
      () => checkExecArgs(at, "x", ["true"], { env: { A: 1 } }),
      'options.env["A"] must be a string, got 1',
    );
    const bytes = new Uint8Array([1]);
    expect(checkExecArgs(at, "x", ["cat"], { stdin: bytes, env: ["A=1"] })).toEqual([
      "x",
      ["cat"],
      { stdin: bytes, env: ["A=1"] },
    ]);
  });

  it("exec: a sparse array of 2^32-1 elements is refused by its length, not walked", () => {
    // Was "RangeError: Invalid string length" after seconds of JSON.stringify.
    const t0 = performance.now();
    refused(
      () => checkExecArgs(at, "x", new Array(2 ** 32 - 1), {}),
      "command has 4294967295 elements (at most 65536)",
    );
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it("stop and kill: signal names and timeouts", () => {
    refused(() => checkKillArgs(at, "x", 9, undefined), "signalName must be a string, got 9");
    refused(
      () => checkKillArgs(at, "x", "SIGNOPE", undefined),
      'signalName "SIGNOPE" is not a signal name or number',
    );
    expect(checkKillArgs(at, "x", undefined, undefined)[1]).toBe("SIGKILL");
    for (const name of ["SIGTERM", "term", "9", "RTMIN+3", "SIGRTMAX-1"]) {
      expect(checkKillArgs(at, "x", name, undefined)[1]).toBe(name);
    }
    refused(() => checkStopArgs(at, "x", { graceSeconds: 1.5 }), "options.graceSeconds must be an integer");
    refused(
      () => checkStopArgs(at, "x", { graceSeconds: 1e12 }),
      "options.graceSeconds must be an integer from 0 to 2147483",
    );
    refused(
      () => checkStopArgs(at, "x", { signalName: null }),
      "options.signalName must be a string, got null",
    );
    // The names before 0.3 are refused with their new names, not ignored.
    refused(() => checkStopArgs(at, "x", { timeout: 5 }), "options.timeout is now options.graceSeconds");
    refused(
      () => checkStopArgs(at, "x", { stopSignal: "SIGINT" }),
      "options.stopSignal is now options.signalName",
    );
    expect(checkStopArgs(at, "x", { graceSeconds: 3, signalName: "SIGINT" })[1]).toEqual({
      graceSeconds: 3,
      signalName: "SIGINT",
    });
    refused(() => checkRemoveArgs(at, "x", { force: "yes" }), "options.force must be true or false");
  });

  it("pull: the reference, credentials and platform", () => {
    // A 4 MiB reference was scanned whole (and copied into the message).
    const err = refused(
      () => checkPullArgs(at, `127.0.0.1:5000/${"a".repeat(4 * 1024 * 1024)}`, {}),
      "at most 1024",
    );
    expect(err.message.length).toBeLessThan(300);
    refused(() => checkPullArgs(at, image, { auth: "user:pass" }), "options.auth must be an object");
    refused(
      () => checkPullArgs(at, image, { auth: { serverAddress: 5 } }),
      "options.auth.serverAddress must be a string",
    );
    refused(
      () => checkPullArgs(at, image, { platform: "linux" }),
      'options.platform "linux" is not "os/arch"',
    );
    refused(() => checkPullArgs(at, image, { onProgress: "log" }), "options.onProgress must be a function");
    const auth = { username: "u", password: "p", serverAddress: "127.0.0.1:5000" };
    expect(checkPullArgs(at, image, { auth, platform: "linux/amd64" })).toEqual([
      image,
      { auth, platform: "linux/amd64" },
    ]);
  });
});

describe("container specs", () => {
  it.each([
    // Each was a TypeError, a RangeError or a caller's error out of an adapter.
    ["null", null, "spec must be an object, got null"],
    ["a string", "busybox", "spec must be an object"],
    ["a revoked Proxy", revoked(), "spec cannot be read"],
    ["no image", { command: ["true"] }, "spec.image is required"],
    ["a command that is a string", { image, command: "true" }, 'spec.command must be an array, got "true"'],
    ["a command of numbers", { image, command: [1] }, "spec.command[0] must be a string, got 1"],
    ["a workdir of another type", { image, workdir: 5 }, "spec.workdir must be a string, got 5"],
    ["env entries of another type", { image, env: [5] }, "spec.env[0] must be a string, got 5"],
    ["a null mount", { image, mounts: [null] }, "spec.mounts[0] must be an object, got null"],
    [
      "a mount of no type",
      { image, mounts: [{ target: "/x" }] },
      'spec.mounts[0].type must be "bind" or "tmpfs"',
    ],
    [
      "a bind mount without source",
      { image, mounts: [{ type: "bind", target: "/x" }] },
      "spec.mounts[0].source is required",
    ],
    ["ports that are not an array", { image, ports: 80 }, "spec.ports must be an array, got 80"],
    ["a null port", { image, ports: [null] }, "spec.ports[0] must be an object, got null"],
    [
      "a bigint port",
      { image, ports: [{ containerPort: 80n }] },
      "spec.ports[0].containerPort must be an integer",
    ],
    ["a symbol user", { image, user: Symbol("u") }, "spec.user must be a string, got a symbol"],
    ["a fractional memory", { image, memory: 1.5 }, "spec.memory must be an integer"],
    ["cpus past a million", { image, cpus: 1e300 }, "spec.cpus must be a number from 0.001 to 1000000"],
    ["a label of null", { image, labels: { a: null } }, 'spec.labels["a"] must be a string, got null'],
    [
      "a null-prototype tty",
      { image, tty: Object.create(null) },
      "spec.tty must be true or false, got an object",
    ],
    ["a name with a slash", { image, name: "a/b" }, 'spec.name "a/b" is not an id or name'],
    [
      "a huge sparse command",
      { image, command: new Array(2 ** 32 - 1) },
      "spec.command has 4294967295 elements",
    ],
  ])("refuses %s", (_, spec, words) => {
    refused(() => checkCreateArgs({ operation: "create" }, spec, undefined), words);
  });

  it("names every problem at once", () => {
    refused(
      () =>
        validateContainerSpec({
          image: "Not A Valid:Ref",
          memory: -1,
          user: "no such user!",
          workdir: "rel",
        } as never),
      "invalid container spec",
      "spec.memory must be an integer from 1",
      'spec.user "no such user!" is not a user or uid[:gid]',
      'spec.workdir "rel" must be an absolute path',
      "Not A Valid:Ref",
    );
  });

  it("reads each field once: an object cannot pass the check and then answer otherwise", () => {
    const reads = new Map<string, number>();
    const fickle = Object.fromEntries(
      Object.entries({ image, command: ["true"], labels: { a: "b" } }).map(([k, v]) => [k, v]),
    );
    const spec = {} as Record<string, unknown>;
    for (const [key, value] of Object.entries(fickle)) {
      Object.defineProperty(spec, key, {
        enumerable: true,
        get: () => {
          reads.set(key, (reads.get(key) ?? 0) + 1);
          return reads.get(key) === 1 ? value : Symbol("turned");
        },
      });
    }
    const [checked] = checkRunArgs({ operation: "run" }, spec, undefined);
    expect(checked).toEqual({ image, command: ["true"], labels: { a: "b" } });
    expect(Object.getOwnPropertyDescriptor(checked, "image")?.get).toBeUndefined();
    expect([...reads.values()]).toEqual([1, 1, 1]);
  });

  it("keeps only a spec's own fields, and copies arrays and maps", () => {
    const command = ["echo", "hi"];
    const spec = JSON.parse(`{"image": "${image}", "__proto__": {"polluted": 1}, "extra": 1}`);
    spec.command = command;
    const checked = validateContainerSpec(spec);
    expect(checked).toEqual({ image, command: ["echo", "hi"] });
    expect(checked.command).not.toBe(command);
    expect(Object.hasOwn(checked, "__proto__")).toBe(false);
  });
});
