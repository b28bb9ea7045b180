// The kinds of value Runtime arguments are made of, read the same way for every method and backend: ids
// and names, absolute paths, labels, environments, users, POSIX signal names. Limits are generous (the
// kernel's own where there is one) and checked before anything looks at a value's contents, so a string
// of megabytes costs nothing.
import { type ArgReader, show } from "./arg-reader.js";
import { MAX_REFERENCE_LENGTH, parseImageRef } from "./image-ref.js";

/** Longest container, pod or sandbox id or name accepted (containerd's own limit is 76). */
export const MAX_ID_LENGTH = 256;
/** Longest accepted path (Linux's PATH_MAX). */
export const MAX_PATH_LENGTH = 4096;
/** Longest accepted command argument or environment entry (Linux's MAX_ARG_STRLEN). */
export const MAX_ARG_LENGTH = 128 * 1024;
/** Most command arguments, environment entries or labels accepted. */
export const MAX_LIST_LENGTH = 65_536;

// Control characters and "/" are never part of an id or name on any backend; "." and ".." would be path
// segments to the Docker API.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is refused
const ID_FORBIDDEN = /[\x00-\x1f\x7f/]/;
/** Half of a UTF-16 pair alone: not Unicode, and not sendable as UTF-8. */
const LONE_SURROGATE = /\p{Cs}/u;

/** An id or a name (container, pod): 1 to MAX_ID_LENGTH characters, no control characters, no "/". */
export function readId(r: ArgReader, value: unknown, what: string): string | undefined {
  const id = r.string(value, what, { max: MAX_ID_LENGTH });
  if (id === undefined) {
    if (value === undefined) r.problem(`${what} is required`);
    return undefined;
  }
  if (ID_FORBIDDEN.test(id) || id === "." || id === ".." || LONE_SURROGATE.test(id)) {
    return r.problem(`${what} ${show(id)} is not an id or name (no "/", control characters, "." or "..")`);
  }
  return id;
}

/** An absolute path. */
export function readPath(r: ArgReader, value: unknown, what: string): string | undefined {
  const path = r.string(value, what, { max: MAX_PATH_LENGTH });
  if (path !== undefined && !path.startsWith("/")) {
    return r.problem(`${what} ${show(path)} must be an absolute path`);
  }
  return path;
}

/** Labels: names to values, as every backend takes them. */
export function readLabels(r: ArgReader, value: unknown, what: string): Record<string, string> | undefined {
  return r.record(value, what, {
    maxEntries: MAX_LIST_LENGTH,
    key: { max: MAX_ARG_LENGTH },
    value: { max: MAX_ARG_LENGTH, nonEmpty: false },
  });
}

// Linux's signal names (the container's kernel is Linux whatever the client runs on), as Docker knows them.
const SIGNALS = new Set(
  (
    "ABRT ALRM BUS CHLD CLD CONT FPE HUP ILL INT IO IOT KILL PIPE POLL PROF PWR QUIT SEGV STKFLT STOP SYS " +
    "TERM TRAP TSTP TTIN TTOU URG USR1 USR2 VTALRM WINCH XCPU XFSZ RTMIN RTMAX"
  ).split(" "),
);

/** A POSIX signal's name ("SIGTERM", "TERM", "sigterm", "RTMIN+3") or number ("15"), as a string. */
export function readSignalName(r: ArgReader, value: unknown, what: string): string | undefined {
  const s = r.string(value, what, { max: 32 });
  if (s === undefined) return undefined;
  const number = /^[1-9][0-9]?$/.test(s) && Number(s) <= 64;
  const m = /^(?:SIG)?([A-Z][A-Z0-9]*?)(?:([+-])([0-9]{1,2}))?$/i.exec(s);
  const base = m?.[1]?.toUpperCase();
  const known =
    base !== undefined &&
    SIGNALS.has(base) &&
    (m?.[2] === undefined ||
      (base === "RTMIN" && m[2] === "+" && Number(m[3]) <= 15) ||
      (base === "RTMAX" && m[2] === "-" && Number(m[3]) <= 14));
  if (!number && !known) return r.problem(`${what} ${show(s)} is not a signal name or number`);
  return s;
}

/** An image reference: a string the reference grammar accepts. */
export function readImage(r: ArgReader, value: unknown, what: string): string | undefined {
  const image = r.string(value, what, { max: MAX_REFERENCE_LENGTH });
  if (image === undefined) {
    if (value === undefined) r.problem(`${what} is required`);
    return undefined;
  }
  try {
    parseImageRef(image);
  } catch (err) {
    return r.problem((err as Error).message);
  }
  return image;
}

const USER = /^([a-z_][a-z0-9_.-]*\$?|\d+)(:([a-z_][a-z0-9_.-]*|\d+))?$/i;

/** "user", "uid", "uid:gid" or "user:group". */
export function readUser(r: ArgReader, value: unknown, what: string): string | undefined {
  const user = r.string(value, what, { max: 256 });
  if (user !== undefined && !USER.test(user))
    return r.problem(`${what} ${show(user)} is not a user or uid[:gid]`);
  return user;
}

const ENV_NAME = /^[^=\0]+$/;

/** An environment: KEY=VALUE strings, or a map of names to values. */
export function readEnv(
  r: ArgReader,
  value: unknown,
  what: string,
): Record<string, string> | string[] | undefined {
  if (value === undefined) return undefined;
  const isList = r.read(what, () => Array.isArray(value));
  if (!isList) return undefined;
  if (isList.value) {
    const list = r.strings(value, what, MAX_LIST_LENGTH, { max: MAX_ARG_LENGTH });
    for (const entry of list ?? []) {
      const eq = entry.indexOf("=");
      if (eq <= 0) return r.problem(`${what} entry ${show(entry)} is not KEY=VALUE`);
    }
    return list;
  }
  const map = r.record(value, what, {
    maxEntries: MAX_LIST_LENGTH,
    key: { max: MAX_ARG_LENGTH },
    value: { max: MAX_ARG_LENGTH, nonEmpty: false },
  });
  for (const key of Object.keys(map ?? {})) {
    if (!ENV_NAME.test(key)) return r.problem(`${what} name ${show(key)} is invalid (no "=")`);
  }
  return map;
}
