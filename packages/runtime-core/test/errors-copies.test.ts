// Two physically separate copies of runtime-core in one process, as an app gets when its tree holds two
// versions: errors made by one copy must pass `instanceof` and `isBerthError` against the other's classes,
// and no more than that (a ConflictError is still not a NotFoundError).
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type Core = typeof import("../src/index.js");

const src = new URL("../src/", import.meta.url);
const dirs: string[] = [];
let a: Core;
let b: Core;

async function copy(): Promise<Core> {
  const dir = mkdtempSync(join(tmpdir(), "berth-core-copy-"));
  dirs.push(dir);
  cpSync(src, join(dir, "src"), { recursive: true });
  return (await import(pathToFileURL(join(dir, "src", "index.ts")).href)) as Core;
}

beforeAll(async () => {
  a = await copy();
  b = await copy();
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("errors across two copies of runtime-core", () => {
  it("are separate copies", () => {
    expect(a.NotFoundError).not.toBe(b.NotFoundError);
    expect(Object.getPrototypeOf(new a.NotFoundError("x"))).not.toBe(b.NotFoundError.prototype);
  });

  it("instanceof accepts the same class from the other copy, both ways", () => {
    expect(new a.NotFoundError("x")).toBeInstanceOf(b.NotFoundError);
    expect(new b.NotFoundError("x")).toBeInstanceOf(a.NotFoundError);
    expect(new a.DigestMismatchError("x", "e", "a")).toBeInstanceOf(b.DigestMismatchError);
    expect(new a.ApiVersionError("x", "1.44", "1.41")).toBeInstanceOf(b.ApiVersionError);
    for (const err of [new a.TimeoutError("x"), new a.DaemonError("x"), new a.NoRuntimeError([])]) {
      expect(err).toBeInstanceOf(b.BerthError);
      expect(err).toBeInstanceOf(Error);
    }
  });

  it("keeps subclass checks exact", () => {
    const conflict = new a.ConflictError("x");
    expect(conflict instanceof b.NotFoundError).toBe(false);
    expect(conflict instanceof a.NotFoundError).toBe(false);
    expect(new a.UnavailableError("x") instanceof b.NoRuntimeError).toBe(false);
    expect(new a.NoRuntimeError([]) instanceof b.UnavailableError).toBe(true);
    expect(new a.NoRuntimeError([]) instanceof b.NoRuntimeError).toBe(true);
    expect(new a.NoRuntimeError([]) instanceof b.TimeoutError).toBe(false);
  });

  it("isBerthError of either copy accepts the other's errors and nothing else", () => {
    expect(b.isBerthError(new a.ValidationError("x"))).toBe(true);
    expect(a.isBerthError(new b.AbortedError("x"))).toBe(true);
    for (const other of [new Error("x"), new TypeError("x"), {}, null, undefined, "NotFound"]) {
      expect(b.isBerthError(other)).toBe(false);
      expect(other instanceof b.NotFoundError).toBe(false);
    }
  });

  it("errors from the other copy still carry their fields and name", () => {
    const err: unknown = new a.NotFoundError("no such container", { operation: "inspect", backend: "cri" });
    if (!(err instanceof b.NotFoundError)) throw new Error("not a NotFoundError");
    // narrowed by instanceof: the fields are typed
    expect([err.code, err.operation, err.backend, err.name]).toEqual([
      "NotFound",
      "inspect",
      "cri",
      "NotFoundError",
    ]);
  });

  it("an app's own subclass is its own class, and still one of berth's", () => {
    class GoneError extends a.NotFoundError {}
    expect(new GoneError("x")).toBeInstanceOf(b.NotFoundError);
    expect(new GoneError("x")).toBeInstanceOf(GoneError);
    expect(new a.NotFoundError("x") instanceof GoneError).toBe(false);
    expect(new b.NotFoundError("x") instanceof GoneError).toBe(false);
  });
});
