// The fuzz suite's runner: one fast-check property, BERTH_FUZZ_RUNS cases (default 500 so the unit suite
// stays quick; CI's fuzz step asks for 100,000), bounded in time, and a printed figure of the cases that
// actually ran.
import { inspect } from "node:util";
import { BerthError } from "@berth/runtime-core";
import fc from "fast-check";
import { vi } from "vitest";

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
