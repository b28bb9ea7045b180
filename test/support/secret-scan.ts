// The secrets tests' scanner: a unique password, every form it travels in, and a grep of everything a
// failed call leaves behind (the error and its causes, however they are printed, and whatever was written
// to the console, stdout or stderr meanwhile).
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { expect } from "vitest";

export interface Secret {
  user: string;
  password: string;
  /** The password and the encodings it is sent in. */
  forms: string[];
}

const b64 = (s: string) => Buffer.from(s).toString("base64");
const b64url = (s: string) => b64(s).replace(/\+/g, "-").replace(/\//g, "_");

/** A password no test output could contain by chance, whose base64 and base64url differ. */
export function makeSecret(label: string): Secret {
  for (;;) {
    const password = `pw-${label}-${randomBytes(12).toString("hex")}>?~`;
    if (b64(password) === b64url(password)) continue;
    const user = `user-${label}`;
    return { user, password, forms: formsOf(password, user) };
  }
}

/** What to look for: the value itself, its base64 and base64url (padded or not) and "user:value"'s. */
export function formsOf(value: string, user?: string): string[] {
  const forms = [value, b64(value), b64url(value), b64(value).replace(/=+$/, ""), encodeURIComponent(value)];
  if (user !== undefined) forms.push(b64(`${user}:${value}`), b64url(`${user}:${value}`));
  return [...new Set(forms)];
}

function safeJson(v: unknown): string {
  const seen = new WeakSet<object>();
  try {
    return (
      JSON.stringify(v, (_k, x: unknown) => {
        if (typeof x === "object" && x !== null) {
          if (seen.has(x)) return "[circular]";
          seen.add(x);
        }
        return typeof x === "bigint" ? String(x) : x;
      }) ?? ""
    );
  } catch (err) {
    return `[unserializable: ${String(err)}]`;
  }
}

type Writer = (chunk: unknown, ...rest: unknown[]) => boolean;
const CONSOLE = ["log", "info", "warn", "error", "debug", "trace"] as const;

export class SecretScan {
  errors = 0;
  streams = 0;
  readonly leaks: string[] = [];
  readonly #forms: string[];

  constructor(
    readonly secrets: Secret[],
    extraForms: string[] = [],
  ) {
    this.#forms = [...new Set([...secrets.flatMap((s) => s.forms), ...extraForms])];
  }

  /** Add a value learnt during the test (a token a fixture issued) to what must not leak. */
  alsoForbid(value: string): void {
    for (const f of formsOf(value)) if (!this.#forms.includes(f)) this.#forms.push(f);
  }

  #grep(text: string, where: string): void {
    for (const f of this.#forms)
      if (text.includes(f)) this.leaks.push(`${where} contains ${JSON.stringify(f)}`);
  }

  /** Grep an error and its cause chain (and AggregateError members) in every printed form. */
  error(err: unknown, where: string): void {
    const queue: unknown[] = [err];
    const seen = new Set<unknown>();
    while (queue.length) {
      const e = queue.shift();
      if (e === undefined || e === null || seen.has(e)) continue;
      seen.add(e);
      this.errors++;
      const label = `${where}: ${e instanceof Error ? e.name : typeof e}`;
      if (e instanceof Error) {
        this.#grep(e.message, `${label}.message`);
        this.#grep(String(e.stack), `${label}.stack`);
        queue.push(e.cause);
        if (e instanceof AggregateError) queue.push(...e.errors);
      }
      this.#grep(String(e), `${label} String()`);
      this.#grep(inspect(e, { depth: Number.POSITIVE_INFINITY, showHidden: true }), `${label} util.inspect`);
      this.#grep(safeJson(e), `${label} JSON.stringify`);
    }
  }

  /**
   * Run a call that must fail, capturing console, stdout, stderr and process warnings meanwhile; grep the
   * rejection and the captured text. Returns the rejection.
   */
  async failing(where: string, call: () => Promise<unknown>): Promise<unknown> {
    const captured = { console: "", stdout: "", stderr: "", warnings: "" };
    const saved = CONSOLE.map((m) => [m, console[m]] as const);
    for (const m of CONSOLE) {
      console[m] = (...args: unknown[]) => {
        captured.console += `${args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: 8 }))).join(" ")}\n`;
      };
    }
    const out = process.stdout.write;
    const err = process.stderr.write;
    const hook =
      (key: "stdout" | "stderr"): Writer =>
      (chunk) => {
        captured[key] +=
          typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8");
        return true;
      };
    process.stdout.write = hook("stdout") as typeof process.stdout.write;
    process.stderr.write = hook("stderr") as typeof process.stderr.write;
    const onWarning = (w: Error) => {
      captured.warnings += `${inspect(w)}\n`;
    };
    process.on("warning", onWarning);
    let rejection: unknown;
    let rejected = false;
    try {
      await call();
    } catch (e) {
      rejected = true;
      rejection = e;
    } finally {
      // Warnings are emitted on the next tick.
      await new Promise((r) => setImmediate(r));
      process.off("warning", onWarning);
      process.stdout.write = out;
      process.stderr.write = err;
      for (const [m, f] of saved) console[m] = f;
    }
    for (const [name, text] of Object.entries(captured)) {
      this.streams++;
      this.#grep(text, `${where}: ${name}`);
    }
    expect(rejected, `${where}: the call was expected to fail`).toBe(true);
    this.error(rejection, where);
    return rejection;
  }

  /** Print the figures and fail on any leak. */
  report(label: string): void {
    console.log(
      `secrets: ${label}: ${this.errors} error objects, ${this.streams} streams grepped, ${this.leaks.length} leaks`,
    );
    expect(this.leaks).toEqual([]);
  }
}
