// Reading a daemon's JSON answer without trusting its shape: the answer itself must be the object or array
// the call returns (else a ProtocolError naming the operation); a field of another type than documented
// reads as absent, so a misbehaving engine cannot turn into a TypeError deep in a caller.
import { ProtocolError } from "@berth/runtime-core";

export type Json = Record<string, unknown>;

const describe = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "an array" : typeof v);

/** The answer as an object, or a ProtocolError. */
export function objectOf(value: unknown, operation: string): Json {
  const o = obj(value);
  if (!o)
    throw new ProtocolError(`${operation}: the daemon answered ${describe(value)}, not an object`, {
      operation,
    });
  return o;
}

/** The answer as an array of objects, or a ProtocolError. */
export function objectsOf(value: unknown, operation: string): Json[] {
  if (!Array.isArray(value)) {
    throw new ProtocolError(`${operation}: the daemon answered ${describe(value)}, not an array`, {
      operation,
    });
  }
  return value.map((item) => objectOf(item, operation));
}

/** A field that should be an object. */
export const obj = (v: unknown): Json | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
/** A field that should be a string. */
export const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
/** A field that should be a finite number. */
export const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;
/** A field that should map names to strings (labels, attributes): its string entries. */
export function strings(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(obj(v) ?? {})) if (typeof value === "string") out[k] = value;
  return out;
}
/** A timestamp field: a Date when it is a valid time, not Go's zero time. */
export function time(v: unknown): Date | undefined {
  const s = str(v);
  if (!s || s.startsWith("0001-")) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
