// Reading a caller's arguments without trusting their shape. JavaScript callers (and TypeScript callers
// with `any`, JSON or a cast) can pass anything: null, NaN, bigints, symbols, strings of megabytes, arrays
// for objects, getters and Proxies that throw, objects that answer differently on each read. The reader
// reads each value once, checks it, and builds a plain copy; what is wrong is collected as problems and
// thrown as one ValidationError. Nothing a caller passes can make it throw anything else.
import { BerthError, ValidationError } from "./errors.js";

/** Where the arguments go: the Runtime method and the backend, for the error. */
export interface CallSite {
  /** The method, as errors name it ("create", "containers.inspect"). */
  operation: string;
  /** The backend, when known. */
  backend?: string | undefined;
}

const SHOWN_CHARS = 60;

/** A value in a message: a string shortened and quoted, anything else by its type. Never throws. */
export function show(value: unknown): string {
  try {
    switch (typeof value) {
      case "string": {
        const head = JSON.stringify(value.slice(0, SHOWN_CHARS));
        return value.length > SHOWN_CHARS ? `${head}... (${value.length} characters)` : head;
      }
      case "number":
      case "boolean":
      case "undefined":
        return String(value);
      case "bigint":
        return "a bigint";
      case "symbol":
        return "a symbol";
      case "function":
        return "a function";
      default:
        if (value === null) return "null";
        return Array.isArray(value) ? "an array" : "an object";
    }
  } catch {
    return "a value that cannot be read";
  }
}

/** What a caller's getter or Proxy threw, in a few words. Never throws. */
function reason(err: unknown): string {
  try {
    if (err instanceof Error) return `${err.name}: ${String(err.message).slice(0, 200)}`;
    return show(err);
  } catch {
    return "an error that cannot be read";
  }
}

/** What a string argument must be. */
export interface StringRules {
  /** Longest accepted, in UTF-16 code units (checked before anything looks at the contents). */
  max: number;
  /** Refuse "" (default true). */
  nonEmpty?: boolean;
  /** Refuse NUL characters (default true: no argument, environment entry or path can hold one). */
  noNul?: boolean;
}

/**
 * Reads an untrusted argument into a checked plain copy: each reader method returns the value, or
 * undefined after recording a problem; `finish()` then throws one ValidationError naming them all. No
 * method throws anything else, whatever the caller passed (a BerthError thrown from inside a getter is
 * passed on as it is).
 */
export class ArgReader {
  /** What is wrong so far, in words for the error message. */
  readonly problems: string[] = [];

  /** @param at - The call the arguments are for, named in the error. */
  constructor(
    /** The call the arguments are for, named in the error. */
    readonly at: CallSite,
  ) {}

  /** Records a problem; returns undefined so a reader can `return this.problem(...)`. */
  problem(what: string): undefined {
    this.problems.push(what);
    return undefined;
  }

  /** Run `read`; a throw (a caller's getter, a Proxy trap, a revoked Proxy) becomes a problem. */
  read<T>(
    what: string,
    read: () => T,
  ):
    | {
        /** What `read` returned. */
        value: T;
      }
    | undefined {
    try {
      return { value: read() };
    } catch (err) {
      if (err instanceof BerthError) throw err;
      return this.problem(`${what} cannot be read (${reason(err)})`);
    }
  }

  /** `obj[key]`, read once; undefined when it cannot be read (a problem then says why). */
  field(obj: object, key: string, what: string): unknown {
    return this.read(what, () => (obj as Record<string, unknown>)[key])?.value;
  }

  /** An object (not null, not an array, not a function), or undefined when absent and optional. */
  object(value: unknown, what: string, optional = true): object | undefined {
    if (value === undefined && optional) return undefined;
    const ok = this.read(what, () => typeof value === "object" && value !== null && !Array.isArray(value));
    if (!ok) return undefined;
    if (!ok.value) return this.problem(`${what} must be an object, got ${show(value)}`);
    return value as object;
  }

  /** A string within `rules` (length, emptiness, NULs), or undefined when absent. */
  string(value: unknown, what: string, rules: StringRules): string | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "string") return this.problem(`${what} must be a string, got ${show(value)}`);
    if (value.length > rules.max) {
      return this.problem(`${what} is ${value.length} characters long (at most ${rules.max})`);
    }
    if ((rules.nonEmpty ?? true) && value === "") return this.problem(`${what} must not be empty`);
    if ((rules.noNul ?? true) && value.includes("\0")) return this.problem(`${what} must not contain NUL`);
    return value;
  }

  /** true or false, or undefined when absent. */
  boolean(value: unknown, what: string): boolean | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") return this.problem(`${what} must be true or false, got ${show(value)}`);
    return value;
  }

  /** A number in [min, max]; an integer unless `fraction`. */
  number(
    value: unknown,
    what: string,
    range: { min: number; max: number; fraction?: boolean },
  ): number | undefined {
    if (value === undefined) return undefined;
    const integer = !range.fraction;
    const ok =
      typeof value === "number" &&
      Number.isFinite(value) &&
      value >= range.min &&
      value <= range.max &&
      (!integer || Number.isInteger(value));
    if (!ok) {
      const kind = integer ? "an integer" : "a number";
      return this.problem(`${what} must be ${kind} from ${range.min} to ${range.max}, got ${show(value)}`);
    }
    return value as number;
  }

  /** A function (typed as `T` by the caller, not checked further), or undefined when absent. */
  function<T>(value: unknown, what: string): T | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "function") return this.problem(`${what} must be a function, got ${show(value)}`);
    return value as T;
  }

  /** A real AbortSignal (one posing as one cannot be listened to). Whether it has fired is not checked here. */
  signal(value: unknown, what: string): AbortSignal | undefined {
    if (value === undefined) return undefined;
    const isSignal = this.read(what, () => value instanceof AbortSignal);
    if (!isSignal) return undefined;
    if (!isSignal.value) return this.problem(`${what} must be an AbortSignal, got ${show(value)}`);
    try {
      // A getter of AbortSignal.prototype: it throws on an object made from the prototype alone.
      void (value as AbortSignal).aborted;
    } catch {
      return this.problem(`${what} must be an AbortSignal, got an object made from its prototype`);
    }
    return value as AbortSignal;
  }

  /** A valid Date. */
  date(value: unknown, what: string): Date | undefined {
    if (value === undefined) return undefined;
    const time = this.read(what, () => (value instanceof Date ? value.getTime() : undefined));
    if (!time) return undefined;
    if (time.value === undefined || Number.isNaN(time.value)) {
      const got = time.value === undefined ? show(value) : "an invalid Date";
      return this.problem(`${what} must be a valid Date, got ${got}`);
    }
    return new Date(time.value);
  }

  /** An array of at most `max` elements, each read by index once (holes read as undefined). */
  array(value: unknown, what: string, max: number): unknown[] | undefined {
    if (value === undefined) return undefined;
    const length = this.read(what, () => (Array.isArray(value) ? value.length : -1));
    if (!length) return undefined;
    if (length.value < 0) return this.problem(`${what} must be an array, got ${show(value)}`);
    if (length.value > max) return this.problem(`${what} has ${length.value} elements (at most ${max})`);
    const out: unknown[] = [];
    for (let i = 0; i < length.value; i++) {
      const v = this.read(`${what}[${i}]`, () => (value as unknown[])[i]);
      if (!v) return undefined;
      out.push(v.value);
    }
    return out;
  }

  /** An array of strings. */
  strings(value: unknown, what: string, max: number, rules: StringRules): string[] | undefined {
    const list = this.array(value, what, max);
    if (!list) return undefined;
    const out: string[] = [];
    for (const [i, v] of list.entries()) {
      const s =
        v === undefined
          ? this.problem(`${what}[${i}] must be a string, got undefined`)
          : this.string(v, `${what}[${i}]`, rules);
      if (s === undefined) return undefined;
      out.push(s);
    }
    return out;
  }

  /** A map of string to string: an object's own enumerable string keys, each value read once. */
  record(
    value: unknown,
    what: string,
    rules: { maxEntries: number; key: StringRules; value: StringRules },
  ): Record<string, string> | undefined {
    const obj = this.object(value, what);
    if (!obj) return undefined;
    const keys = this.read(what, () => Object.keys(obj));
    if (!keys) return undefined;
    if (keys.value.length > rules.maxEntries) {
      return this.problem(`${what} has ${keys.value.length} entries (at most ${rules.maxEntries})`);
    }
    const entries: Array<[string, string]> = [];
    for (const key of keys.value) {
      const name = `${what}[${show(key)}]`;
      const k = this.string(key, `${what} key ${show(key)}`, rules.key);
      const raw = this.read(name, () => (obj as Record<string, unknown>)[key]);
      if (!raw) return undefined;
      const v =
        raw.value === undefined
          ? this.problem(`${name} must be a string, got undefined`)
          : this.string(raw.value, name, rules.value);
      if (k === undefined || v === undefined) return undefined;
      entries.push([k, v]);
    }
    // fromEntries defines each key as a plain property: a "__proto__" key stays a key.
    return Object.fromEntries(entries);
  }

  /** Throw one ValidationError naming every problem, if there is any. */
  finish(what?: string): void {
    if (this.problems.length === 0) return;
    const head = what ? `${this.at.operation}: ${what}` : this.at.operation;
    throw new ValidationError(`${head}: ${this.problems.join("; ")}`, {
      operation: this.at.operation,
      ...(this.at.backend ? { backend: this.at.backend } : {}),
    });
  }
}
