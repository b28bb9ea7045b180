// The fuzz suite's runner: one fast-check property, BERTH_FUZZ_RUNS cases (default 500 so the unit suite
// stays quick; CI's fuzz step asks for 100,000), bounded in time, and a printed figure of the cases that
// actually ran.

import { AssertionError } from "node:assert";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { BerthError } from "@berth/runtime-core";
import fc from "fast-check";
import { afterAll, vi } from "vitest";

export const FUZZ_RUNS = Number(process.env.BERTH_FUZZ_RUNS ?? 500);
/** A whole property past this budget fails: a hang, or work gone super-linear. */
export const FUZZ_TIME_LIMIT_MS = Number(process.env.BERTH_FUZZ_TIME_LIMIT_MS ?? 180_000);
/** One case past this fails: async cases are cut off, sync ones are measured (nothing can stop them). */
export const CASE_TIME_LIMIT_MS = 5_000;

vi.setConfig({ testTimeout: FUZZ_TIME_LIMIT_MS + 60_000 });

/** Rethrow anything that is not one of berth's typed errors, so fast-check reports it. */
export function expectTyped(err: unknown): asserts err is BerthError {
  if (!(err instanceof BerthError)) {
    throw new Error(`untyped rejection: ${inspect(err, { depth: 3 })}`, { cause: err });
  }
}

/** Run `fn`; it may return or throw a BerthError, nothing else. Returns what it returned, if it did. */
export async function typedOnly<T>(fn: () => T | Promise<T>): Promise<{ value: T } | { error: BerthError }> {
  try {
    return { value: await fn() };
  } catch (err) {
    expectTyped(err);
    return { error: err };
  }
}

/**
 * Check `predicate` on FUZZ_RUNS values of `arb` (or `runs`), then print
 * `fuzz: <target>: <cases> cases, <failures> failures` and fail the test on a counterexample.
 * An `async` predicate is cut off after CASE_TIME_LIMIT_MS; a sync one cannot be, and is measured.
 */
export async function fuzz<T>(
  target: string,
  arb: fc.Arbitrary<T>,
  predicate: (value: T) => unknown,
  runs = FUZZ_RUNS,
): Promise<void> {
  let ran = 0;
  let firstFailure: number | undefined;
  let slowest = 0;
  const started = (): number => {
    ran++;
    return performance.now();
  };
  const finished = (t0: number): void => {
    const took = performance.now() - t0;
    if (took > slowest) slowest = took;
    if (took > CASE_TIME_LIMIT_MS) {
      throw new Error(`one case took ${took.toFixed(0)} ms (limit ${CASE_TIME_LIMIT_MS} ms)`);
    }
  };
  const failed = (err: unknown): never => {
    firstFailure ??= ran;
    throw err;
  };
  const limit = fc.interruptAfterTimeLimit(FUZZ_TIME_LIMIT_MS, { failOnInterrupt: true });
  const t0 = performance.now();
  const details =
    predicate.constructor.name === "AsyncFunction"
      ? await fc.check(
          fc.asyncProperty(arb, async (value) => {
            const t = started();
            try {
              await predicate(value);
              finished(t);
            } catch (err) {
              failed(err);
            }
          }),
          { numRuns: runs, plugins: [limit, fc.timeout(CASE_TIME_LIMIT_MS)] },
        )
      : fc.check(
          fc.property(arb, (value) => {
            const t = started();
            try {
              const result = predicate(value);
              if (typeof (result as { then?: unknown } | undefined)?.then === "function") {
                throw new Error("fuzz: a predicate returning a promise must be an async function");
              }
              finished(t);
            } catch (err) {
              failed(err);
            }
          }),
          { numRuns: runs, plugins: [limit] },
        );
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  // fast-check's count and ours must agree: every case it counts reached the predicate.
  const cases = details.failed ? (firstFailure ?? details.numRuns) : ran;
  const failures = details.failed ? 1 : 0;
  console.log(
    `fuzz: ${target}: ${cases} cases, ${failures} failures (${seconds} s, slowest case ${slowest.toFixed(1)} ms)`,
  );
  if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? `fuzz: ${target} failed`);
  if (cases !== details.numRuns || cases !== runs) {
    throw new Error(`fuzz: ${target}: fast-check ran ${details.numRuns} cases, the predicate saw ${cases}`);
  }
}

/** Cut bytes at the given points (taken modulo the length) into consecutive chunks. */
export function chunksOf(bytes: Uint8Array, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    if (p > prev) out.push(Buffer.from(bytes.subarray(prev, p)));
    prev = p;
  }
  return out;
}

/** A scratch directory for cases that write files, removed after the file's tests. On tmpfs where there
 *  is one: a case that writes a file costs a tenth of what it does on disk. */
export function fuzzDir(name: string): string {
  const dir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), `berth-fuzz-${name}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Any small JSON value. */
export const smallJson = fc.jsonValue({ maxDepth: 2 });
/** A value of any JSON type, biased towards what a field should hold. */
export const loose = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: smallJson as fc.Arbitrary<unknown> });

// ---------------------------------------------------------------------------------------------------
// must(): the expect() matchers the properties use, without vitest's expect machinery, which cost a
// quarter of the fuzz step's CPU at 100,000 cases per property. Failures throw an AssertionError that
// fast-check reports with the counterexample.

const show = (v: unknown) => inspect(v, { depth: 4, breakLength: Number.POSITIVE_INFINITY });

function fail(message: string | undefined, what: string): never {
  throw new AssertionError({ message: message ? `${message}: ${what}` : what });
}

/** Equality as toEqual sees plain data: prototypes ignored, an undefined property the same as none. */
export function sameData(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    return (
      ArrayBuffer.isView(a) && ArrayBuffer.isView(b) && Buffer.from(a as Uint8Array).equals(b as Uint8Array)
    );
  }
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((v, i) => sameData(v, other[i]));
  }
  const defined = (o: object) =>
    Object.entries(o)
      .filter(([, v]) => v !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  const x = defined(a);
  const y = defined(b);
  return x.length === y.length && x.every(([k, v], i) => k === y[i]?.[0] && sameData(v, y[i]?.[1]));
}

type ErrorClass = abstract new (...args: never[]) => unknown;

function thrown(fn: () => unknown): { error: unknown } | undefined {
  try {
    fn();
  } catch (error) {
    return { error };
  }
  return undefined;
}

export function must(actual: unknown, message?: string) {
  const contains = (x: unknown) =>
    typeof actual === "string" ? actual.includes(x as string) : Array.isArray(actual) && actual.includes(x);
  const has = (key: string) => typeof actual === "object" && actual !== null && key in actual;
  return {
    toBe(expected: unknown): void {
      if (!Object.is(actual, expected)) fail(message, `expected ${show(actual)} to be ${show(expected)}`);
    },
    toEqual(expected: unknown): void {
      if (!sameData(actual, expected)) fail(message, `expected ${show(actual)} to equal ${show(expected)}`);
    },
    toBeInstanceOf(cls: ErrorClass): void {
      if (!(actual instanceof cls))
        fail(message, `expected ${show(actual)} to be an instance of ${cls.name}`);
    },
    toMatch(pattern: RegExp | string): void {
      const text = String(actual);
      if (typeof pattern === "string" ? !text.includes(pattern) : !pattern.test(text)) {
        fail(message, `expected ${show(actual)} to match ${String(pattern)}`);
      }
    },
    toContain(x: unknown): void {
      if (!contains(x)) fail(message, `expected ${show(actual)} to contain ${show(x)}`);
    },
    toHaveProperty(key: string): void {
      if (!has(key)) fail(message, `expected ${show(actual)} to have a property ${key}`);
    },
    toBeLessThan(n: number): void {
      if (!((actual as number) < n)) fail(message, `expected ${show(actual)} to be less than ${n}`);
    },
    toBeLessThanOrEqual(n: number): void {
      if (!((actual as number) <= n)) fail(message, `expected ${show(actual)} to be at most ${n}`);
    },
    /** `actual` is a function: it throws an instance of `cls`, or an error whose message matches. */
    toThrow(expected: ErrorClass | RegExp): void {
      const t = thrown(actual as () => unknown);
      if (!t) fail(message, "expected the function to throw");
      const ok =
        expected instanceof RegExp
          ? expected.test(t.error instanceof Error ? t.error.message : String(t.error))
          : t.error instanceof expected;
      if (!ok) fail(message, `expected a throw matching ${String(expected)}, got ${show(t.error)}`);
    },
    not: {
      toContain(x: unknown): void {
        if (contains(x)) fail(message, `expected ${show(actual)} not to contain ${show(x)}`);
      },
      toHaveProperty(key: string): void {
        if (has(key)) fail(message, `expected ${show(actual)} not to have a property ${key}`);
      },
      toThrow(): void {
        const t = thrown(actual as () => unknown);
        if (t) fail(message, `expected no throw, got ${show(t.error)}`);
      },
    },
  };
}
