// Hostile arguments for every Runtime method, as a JavaScript caller could pass them: fields missing or of
// the wrong type, nulls, NaN and Infinity, bigints, symbols, functions, arrays for objects, strings of
// megabytes or with NULs, `/` and `..`, `__proto__` keys, getters and Proxies that throw, revoked Proxies,
// objects that answer differently on each read, things posing as AbortSignals.
//
// Arbitraries produce descriptions, not values: plain data in which `{ $: "name" }` stands for an entry of
// CATALOG (a value that cannot be printed or must be made fresh per case). `materialize()` turns a
// description into the arguments of one call, so a counterexample prints readably and replays exactly.
//
// Each method has broken argument lists (at least one argument it must refuse: the adapters refuse them
// before any daemon call, so the fuzz stays cheap) and plausible ones, which reach the daemon: unknown ids
// (NotFound), an image the registry lacks, and rarely a container that is really created (labelled, and
// removed by the test). The test decides how many of each.
import fc from "fast-check";

export const RUNTIME_METHODS = [
  "info",
  "pull",
  "create",
  "start",
  "run",
  "inspect",
  "list",
  "wait",
  "logs",
  "exec",
  "stop",
  "kill",
  "remove",
  "pause",
  "unpause",
  "stats",
  "events",
  "endpoint",
  "waitFor",
] as const;
export type RuntimeMethod = (typeof RUNTIME_METHODS)[number];

/** A description: plain data, with `{ $: name }` for catalog values and `{ $: "live-signal", ms }`. */
export type Described = unknown;

const MiB = 1024 * 1024;
let hugeCache: Record<string, string> | undefined;
/** Strings of megabytes, made once (every case that names one shares it). */
function huge(name: string): string {
  hugeCache ??= {
    "huge-a": "a".repeat(4 * MiB),
    "huge-slashes": "../".repeat(MiB),
    "huge-nul": `x${"\0".repeat(MiB)}`,
    "huge-ref": `127.0.0.1:5000/${"a".repeat(2 * MiB)}:latest`,
    "huge-unicode": "\u{1F600}".repeat(MiB / 2),
  };
  return hugeCache[name] as string;
}

/** Read only, so one serves every case. */
const hugeBytes = new Uint8Array(4 * MiB);

const boom = (what: string) => () => {
  throw new Error(`hostile ${what}`);
};
/** A Proxy whose every trap throws (typeof, and nothing else, still works on it). */
const throwingProxy = (target: object) =>
  new Proxy(target, {
    get: boom("proxy get"),
    has: boom("proxy has"),
    ownKeys: boom("proxy ownKeys"),
    getOwnPropertyDescriptor: boom("proxy getOwnPropertyDescriptor"),
    getPrototypeOf: boom("proxy getPrototypeOf"),
    apply: boom("proxy apply"),
    construct: boom("proxy construct"),
  });
const revoked = (target: object) => {
  const r = Proxy.revocable(target, {});
  r.revoke();
  return r.proxy;
};
/** An object whose every property is a getter that throws. */
const throwingGetters = (keys: string[]) =>
  Object.defineProperties(
    {},
    Object.fromEntries(keys.map((k) => [k, { get: boom(`getter ${k}`), enumerable: true }])),
  );

const SPEC_KEYS = ["image", "command", "entrypoint", "env", "labels", "mounts", "ports", "name", "user"];
const OPTION_KEYS = ["signal", "labels", "all", "follow", "tail", "since", "auth", "timeout", "force"];

/**
 * Values a description names, made fresh for each case. Each carries its kinds, so a slot draws as
 * "hostile" only what it cannot accept.
 */
export const CATALOG: Record<string, { kinds: string[]; make: () => unknown }> = {
  undefined: { kinds: ["undefined"], make: () => undefined },
  null: { kinds: ["null"], make: () => null },
  true: { kinds: ["boolean"], make: () => true },
  false: { kinds: ["boolean"], make: () => false },
  zero: { kinds: ["number", "int", "zero"], make: () => 0 },
  "minus-zero": { kinds: ["number", "int", "zero"], make: () => -0 },
  "minus-one": { kinds: ["number", "int", "negative"], make: () => -1 },
  fraction: { kinds: ["number", "fraction"], make: () => 1.5 },
  "tiny-fraction": { kinds: ["number", "fraction"], make: () => 5e-324 },
  NaN: { kinds: ["number", "nan"], make: () => Number.NaN },
  Infinity: { kinds: ["number", "infinite"], make: () => Number.POSITIVE_INFINITY },
  "-Infinity": { kinds: ["number", "infinite", "negative"], make: () => Number.NEGATIVE_INFINITY },
  "unsafe-int": { kinds: ["number", "int", "unsafe"], make: () => 2 ** 53 + 2 },
  "max-value": { kinds: ["number", "int", "unsafe"], make: () => Number.MAX_VALUE },
  "int32-overflow": { kinds: ["number", "int", "big"], make: () => 2 ** 31 },
  bigint: { kinds: ["bigint"], make: () => 10n },
  "negative-bigint": { kinds: ["bigint"], make: () => -(2n ** 70n) },
  "empty-string": { kinds: ["string", "empty"], make: () => "" },
  // Odd but valid ids and names ("oddly"): the daemon gets them, and answers.
  blank: { kinds: ["string", "blank", "oddly"], make: () => "   " },
  nul: { kinds: ["string", "nul"], make: () => "\0" },
  "inner-nul": { kinds: ["string", "nul"], make: () => "a\0b" },
  slash: { kinds: ["string", "slash"], make: () => "/" },
  dot: { kinds: ["string", "dots"], make: () => "." },
  "dot-dot": { kinds: ["string", "dots"], make: () => ".." },
  "climb-out": { kinds: ["string", "dots", "slash"], make: () => "../../images/x" },
  "climb-inside": { kinds: ["string", "dots", "slash"], make: () => "x/../../y" },
  "encoded-dots": { kinds: ["string", "encoded", "oddly"], make: () => "%2e%2e%2fx" },
  "query-chars": { kinds: ["string", "encoded", "oddly"], make: () => "x?all=1#y" },
  newline: { kinds: ["string", "control"], make: () => "x\r\nX-Injected: 1" },
  "lone-surrogate": { kinds: ["string", "surrogate"], make: () => "x\ud800" },
  "rtl-override": { kinds: ["string", "unicode", "oddly"], make: () => "\u202eexe.x" },
  "long-string": { kinds: ["string", "long"], make: () => "b".repeat(300) },
  "huge-a": { kinds: ["string", "huge"], make: () => huge("huge-a") },
  "huge-slashes": { kinds: ["string", "huge", "slash", "dots"], make: () => huge("huge-slashes") },
  "huge-nul": { kinds: ["string", "huge", "nul"], make: () => huge("huge-nul") },
  "huge-ref": { kinds: ["string", "huge"], make: () => huge("huge-ref") },
  "huge-unicode": { kinds: ["string", "huge", "unicode"], make: () => huge("huge-unicode") },
  "boxed-string": { kinds: ["boxed"], make: () => new String("SIGKILL") },
  "boxed-number": { kinds: ["boxed"], make: () => new Number(5) },
  symbol: { kinds: ["symbol"], make: () => Symbol("hostile") },
  "symbol-iterator": { kinds: ["symbol"], make: () => Symbol.iterator },
  function: { kinds: ["function"], make: () => () => {} },
  "throwing-function": {
    kinds: ["function", "throws"],
    make: () => () => {
      throw new RangeError("hostile callback");
    },
  },
  class: { kinds: ["function"], make: () => class Hostile {} },
  "empty-array": { kinds: ["array", "empty"], make: () => [] },
  "array-of-null": { kinds: ["array"], make: () => [null] },
  "array-of-numbers": { kinds: ["array"], make: () => [1, 2] },
  "holey-array": { kinds: ["array"], make: () => new Array(3) },
  "huge-sparse-array": { kinds: ["array", "huge"], make: () => new Array(2 ** 32 - 1) },
  "array-with-getter": {
    kinds: ["array", "throws"],
    make: () => Object.defineProperty(["x"], 0, { get: boom("array element") }),
  },
  "throwing-array-proxy": { kinds: ["array", "proxy", "throws"], make: () => throwingProxy(["x"]) },
  "empty-object": { kinds: ["object", "empty"], make: () => ({}) },
  "null-prototype": { kinds: ["object"], make: () => Object.create(null) },
  "proto-key": {
    kinds: ["object", "pollution"],
    make: () =>
      JSON.parse('{"__proto__": {"polluted": "yes", "image": "x"}, "constructor": {"prototype": {}}}'),
  },
  // Throws only when converted (to a string, a number, JSON): as an options object it is a valid, empty one.
  "to-string-throws": {
    kinds: ["object", "coercion-throws"],
    make: () => ({ toString: boom("toString"), valueOf: boom("valueOf"), toJSON: boom("toJSON") }),
  },
  "throwing-getters": {
    kinds: ["object", "throws"],
    make: () => throwingGetters([...SPEC_KEYS, ...OPTION_KEYS]),
  },
  "throwing-proxy": { kinds: ["object", "proxy", "throws"], make: () => throwingProxy({}) },
  "revoked-proxy": { kinds: ["object", "proxy", "throws"], make: () => revoked({}) },
  "revoked-array-proxy": { kinds: ["array", "proxy", "throws"], make: () => revoked([]) },
  "invalid-date": { kinds: ["date", "invalid"], make: () => new Date(Number.NaN) },
  "epoch-date": { kinds: ["date"], make: () => new Date(0) },
  "far-date": { kinds: ["date", "far"], make: () => new Date(8.64e15) },
  "before-epoch-date": { kinds: ["date", "negative"], make: () => new Date(-1e12) },
  regexp: { kinds: ["object"], make: () => /x/g },
  map: { kinds: ["object"], make: () => new Map([["image", "x"]]) },
  promise: { kinds: ["object", "thenable"], make: () => Promise.resolve("x") },
  thenable: {
    kinds: ["object", "thenable"],
    // biome-ignore lint/suspicious/noThenProperty: a thenable passed where a value belongs is the point
    make: () => ({ then: (ok: (v: unknown) => void) => ok("x") }),
  },
  error: { kinds: ["object"], make: () => new TypeError("an error passed as a value") },
  bytes: { kinds: ["bytes"], make: () => new Uint8Array([0x68, 0x69, 0x0a]) },
  "huge-bytes": { kinds: ["bytes", "huge"], make: () => hugeBytes },
  "array-buffer": { kinds: ["object"], make: () => new ArrayBuffer(8) },
  "data-view": { kinds: ["object"], make: () => new DataView(new ArrayBuffer(8)) },
  "aborted-signal": { kinds: ["signal", "aborted"], make: () => AbortSignal.abort(new Error("already")) },
  "plain-signal": { kinds: ["signal"], make: () => new AbortController().signal },
  "fake-signal": {
    kinds: ["object", "fake-signal"],
    make: () => ({ aborted: false, addEventListener: 5, removeEventListener: null, reason: undefined }),
  },
  "fake-aborted-signal": {
    kinds: ["object", "fake-signal"],
    make: () => ({ aborted: true, reason: new Error("fake"), throwIfAborted: boom("throwIfAborted") }),
  },
  "signal-prototype": { kinds: ["object", "fake-signal"], make: () => Object.create(AbortSignal.prototype) },
  "abort-controller": { kinds: ["object", "fake-signal"], make: () => new AbortController() },
  "event-target": { kinds: ["object", "fake-signal"], make: () => new EventTarget() },
  /** Looks like a sound spec on the first read of each field, and like junk on the reads after. */
  "fickle-spec": { kinds: ["object", "fickle"], make: () => fickle(fickleSpecFields) },
  "fickle-options": { kinds: ["object", "fickle"], make: () => fickle(fickleOptionFields) },
};

/** Set by the test: what a fickle object answers first (a valid-looking value), before it turns. */
let fickleSpecFields: Record<string, unknown> = {};
let fickleOptionFields: Record<string, unknown> = {};

function fickle(first: Record<string, unknown>): object {
  const reads = new Map<string, number>();
  const out = {};
  // A signal of its own, so that a call that takes the object at its first word is still bounded.
  for (const [key, value] of Object.entries({ ...first, signal: AbortSignal.timeout(5) })) {
    Object.defineProperty(out, key, {
      enumerable: true,
      get: () => {
        const n = (reads.get(key) ?? 0) + 1;
        reads.set(key, n);
        return n === 1 ? value : n === 2 ? null : Symbol("turned");
      },
    });
  }
  return out;
}

// Values that pass as an options object (an object, not an array), read without throwing: "objectish".
for (const entry of Object.values(CATALOG)) {
  if (entry.kinds.some((k) => k === "throws" || k === "proxy" || k === "fickle")) continue;
  const v = entry.make();
  if (typeof v === "object" && v !== null && !Array.isArray(v)) entry.kinds.push("objectish");
}

const named = (name: string) => ({ $: name });
/** Catalog values of none of these kinds. */
export function catalogExcept(...kinds: string[]): fc.Arbitrary<Described> {
  const names = Object.entries(CATALOG)
    .filter(([, v]) => !v.kinds.some((k) => kinds.includes(k)))
    .map(([name]) => name);
  return fc.constantFrom(...names).map(named);
}
/** Catalog values of any of these kinds. */
export function catalogOf(...kinds: string[]): fc.Arbitrary<Described> {
  const names = Object.entries(CATALOG)
    .filter(([, v]) => v.kinds.some((k) => kinds.includes(k)))
    .map(([name]) => name);
  return fc.constantFrom(...names).map(named);
}

// ---------------------------------------------------------------------------------------------------
// Slots: one argument, or one field of an options object, with what it accepts and what it must refuse.

export interface Slot {
  /** Values the method accepts (a field's valid values include its absence, for optional fields). */
  valid: fc.Arbitrary<Described>;
  /** Values it must refuse. */
  hostile: fc.Arbitrary<Described>;
}

/** The live signal: an AbortSignal of the test's, aborted `ms` after the call starts. */
const live = (ms: number[]) => fc.constantFrom(...ms).map((n) => ({ $: "live-signal", ms: n }));
const ABSENT = { $: "undefined" };

/** A field that may be left out: absent is valid, and `undefined` is not hostile. */
function optional(valid: fc.Arbitrary<Described>, hostile: fc.Arbitrary<Described>, absentWeight = 2): Slot {
  return {
    valid: fc.oneof(
      { weight: absentWeight, arbitrary: fc.constant(ABSENT) },
      { weight: 1, arbitrary: valid },
    ),
    hostile,
  };
}

const bool = (): Slot => optional(fc.boolean(), catalogExcept("boolean", "undefined"));
const fn = (): Slot => optional(fc.constant(named("function")), catalogExcept("function", "undefined"));

function signal(kind: "optional" | "live", ms: number[]): Slot {
  const hostile = fc.oneof(
    { weight: 3, arbitrary: catalogExcept("signal", "undefined") },
    { weight: 1, arbitrary: fc.constant(named("aborted-signal")) },
  );
  return kind === "live" ? { valid: live(ms), hostile } : optional(live(ms), hostile, 1);
}

/**
 * A plain object with these fields (absent ones left out), or a hostile value. `given`: valid cases always
 * pass the object (a call without it would not end: events, logs); `spec`: the object itself is required
 * and has a required field (so an empty object is hostile).
 */
function object(fields: Record<string, Slot>, { given = false, spec = false, extra = true } = {}): Slot {
  const keys = Object.keys(fields);
  const validFields = fc.record(Object.fromEntries(keys.map((k) => [k, (fields[k] as Slot).valid])));
  const anyField = (s: Slot) =>
    fc.oneof({ weight: 3, arbitrary: s.valid }, { weight: 1, arbitrary: s.hostile });
  const oneBroken = fc
    .constantFrom(...keys)
    .chain((bad) =>
      fc.record(
        Object.fromEntries(
          keys.map((k) => [k, k === bad ? (fields[k] as Slot).hostile : anyField(fields[k] as Slot)]),
        ),
      ),
    );
  const notAnObject = catalogExcept("objectish", "throws", "fickle", ...(spec ? [] : ["undefined"]));
  // Valid at the first read of each field (which is all a call may do), junk at the next reads.
  const fickle = fc.constant(named(spec ? "fickle-spec" : "fickle-options"));
  const present = fc.oneof({ weight: 10, arbitrary: validFields }, { weight: 1, arbitrary: fickle });
  return {
    valid:
      given || spec
        ? present
        : fc.oneof({ weight: 1, arbitrary: fc.constant(ABSENT) }, { weight: 4, arbitrary: present }),
    hostile: fc.oneof(
      { weight: 60, arbitrary: oneBroken.map(dropAbsent) },
      { weight: 20, arbitrary: notAnObject },
      // An object with a `__proto__` key and nothing else is an empty options object: not hostile.
      { weight: 10, arbitrary: catalogOf("throws", ...(spec ? ["pollution"] : [])) },
      ...(extra
        ? [{ weight: 10, arbitrary: oneBroken.map((o) => ({ ...dropAbsent(o), ...polluted })) }]
        : []),
    ),
  };
}
const polluted = JSON.parse('{"__proto__": {"polluted": "yes"}}');
/** Absent fields are left out of the object (rather than present and undefined). */
function dropAbsent(o: Record<string, Described>): Record<string, Described> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => !isAbsent(v)));
}
const isAbsent = (v: Described) =>
  typeof v === "object" && v !== null && (v as { $?: unknown }).$ === "undefined";

/** Strings every slot that takes a name, an id or a path must refuse. */
const badStrings = catalogOf("empty", "nul", "huge", "dots", "slash", "control");

// ---------------------------------------------------------------------------------------------------
// The methods' slots.

export interface Context {
  /** The image every daemon has (the harness's test image). */
  image: string;
  /** An image reference the harness registry does not have. */
  missingImage: string;
  /** Labels every container the fuzz may create carries. */
  labels: Record<string, string>;
  /** A prefix for names the fuzz gives containers. */
  namePrefix: string;
  /** The host's platform, "linux/amd64". */
  platform: string;
  /** The registry the images are on (credentials for it are harmless). */
  registry: string;
}

/** For each method, an arbitrary of argument lists (descriptions). */
export function hostileCalls(ctx: Context): Record<RuntimeMethod, MethodCalls> {
  fickleSpecFields = { image: ctx.missingImage, labels: ctx.labels, command: ["true"] };
  fickleOptionFields = { labels: ctx.labels, all: true, tail: 1, timeout: 1 };
  const HEX64 = `${"0".repeat(63)}1`;
  // Unknown ids: they reach the daemon, which answers NotFound.
  const id: Slot = {
    valid: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(`${ctx.namePrefix}-nosuch`, HEX64) },
      { weight: 1, arbitrary: catalogOf("oddly") },
    ),
    hostile: fc.oneof(
      { weight: 3, arbitrary: catalogExcept("string") },
      { weight: 2, arbitrary: badStrings },
      { weight: 1, arbitrary: catalogOf("surrogate") },
    ),
  };
  const labels: Slot = {
    valid: fc.constant(ctx.labels),
    hostile: fc.oneof(
      catalogExcept("objectish", "undefined", "fickle", "throws"),
      catalogOf("throws", "fickle"),
      fc
        .constantFrom<Described>(5, null, ["a"], { nested: "x" }, named("symbol"), named("huge-a"), 1n)
        .map((v) => ({ ...ctx.labels, bad: v })),
      fc.constantFrom("", "a\0b", "k".repeat(200_000)).map((k) => ({ ...ctx.labels, [k]: "v" })),
    ),
  };
  const optionalLabels: Slot = optional(labels.valid, labels.hostile);
  const call = (kind: "optional" | "live" = "optional", ms = [5, 50]) => object({ signal: signal(kind, ms) });

  const imageRef: Slot = {
    valid: fc.oneof(
      { weight: 20, arbitrary: fc.constant(ctx.missingImage) },
      { weight: 1, arbitrary: fc.constant(ctx.image) },
    ),
    hostile: fc.oneof(
      catalogExcept("string"),
      badStrings,
      fc.constantFrom(
        "bad//double",
        "x@sha256:zz",
        ":::",
        "a b",
        `${ctx.registry}/x:${"t".repeat(200)}`,
        "-x",
      ),
    ),
  };
  const auth: Slot = optional(
    fc.constant({ serverAddress: ctx.registry, username: "fuzz", password: "fuzz" }),
    fc.oneof(
      catalogExcept("objectish", "undefined", "fickle", "throws"),
      catalogOf("throws"),
      fc.constantFrom<Described>(
        { serverAddress: 5 },
        { serverAddress: ctx.registry, username: 5 },
        { serverAddress: ctx.registry, password: { $: "huge-a" } },
        { serverAddress: ctx.registry, identityToken: null },
        { serverAddress: ctx.registry, registryToken: ["x"] },
        { serverAddress: { $: "symbol" } },
        { serverAddress: "", username: { $: "throwing-getters" } },
      ),
    ),
  );
  const platform: Slot = optional(
    fc.constant(ctx.platform),
    fc.oneof(
      catalogExcept("string", "undefined"),
      badStrings,
      fc.constantFrom("linux", "a/b/c/d", "linux/", "/amd64"),
    ),
  );
  const pullFields = {
    signal: signal("optional", [20, 200, 2000]),
    auth,
    platform,
    onProgress: fn(),
  };

  const args = (strings: string[][]): Slot =>
    optional(
      fc.constantFrom(...strings),
      fc.oneof(
        catalogExcept("array", "undefined"),
        catalogOf("array"),
        fc.constantFrom<Described>([1], [null], ["a\0b"], [{ $: "huge-nul" }], [{ $: "symbol" }], ["ok", 5n]),
      ),
    );
  const env: Slot = optional(
    fc.constantFrom<Described>({ BERTH_FUZZ: "1" }, ["BERTH_FUZZ=1"], []),
    fc.oneof(
      catalogExcept("objectish", "array", "undefined"),
      fc.constantFrom<Described>(
        { A: 1 },
        { A: null },
        { "": "x" },
        { "A=B": "c" },
        { "A\0": "x" },
        { A: "x\0y" },
        ["NOEQUALS"],
        [5],
        ["=x"],
        "A=1",
        { A: { $: "symbol" } },
        { $: "proto-key" },
        { $: "throwing-getters" },
        { $: "throwing-array-proxy" },
      ),
    ),
  );
  const absolutePath = (valid: string[]): Slot =>
    optional(
      fc.constantFrom(...valid),
      fc.oneof(catalogExcept("string", "undefined"), badStrings, fc.constantFrom("relative", "/a\0b")),
    );
  const user: Slot = optional(
    fc.constantFrom("0", "0:0", "root"),
    fc.oneof(
      catalogExcept("string", "undefined"),
      badStrings,
      fc.constantFrom("no such user!", "a:b:c", "-1"),
    ),
  );
  const mount = fc.constantFrom<Described>(
    { type: "bind" },
    { type: "bind", source: "relative", target: "/x" },
    { type: "bind", source: "/tmp", target: "relative" },
    { type: "bind", source: "/tmp", target: "/x", readonly: "yes" },
    { type: "bind", source: { $: "huge-nul" }, target: "/x" },
    { type: "bind", source: 5, target: null },
    { type: "tmpfs" },
    { type: "tmpfs", target: "/x", size: -1 },
    { type: "tmpfs", target: "/x", size: { $: "NaN" } },
    { type: "tmpfs", target: "/x", size: 1.5 },
    { type: "tmpfs", target: "/x", size: "1g" },
    { type: "tmpfs", target: "/x", size: 10n },
    { type: "nope", target: "/x" },
    { target: "/x" },
    null,
    5,
    "tmpfs:/x",
    { $: "throwing-getters" },
    { $: "revoked-proxy" },
  );
  const mounts: Slot = optional(
    fc.constantFrom<Described>(
      [],
      [{ type: "tmpfs", target: "/scratch" }],
      [{ type: "bind", source: "/tmp", target: "/host-tmp", readonly: true }],
    ),
    fc.oneof(catalogExcept("array", "undefined"), fc.array(mount, { minLength: 1, maxLength: 2 })),
  );
  const port = fc.constantFrom<Described>(
    { containerPort: 0 },
    { containerPort: 70000 },
    { containerPort: 1.5 },
    { containerPort: "80" },
    { containerPort: 80n },
    { containerPort: { $: "NaN" } },
    { containerPort: 80, hostPort: -1 },
    { containerPort: 80, hostPort: 65536 },
    { containerPort: 80, hostIp: 5 },
    { containerPort: 80, protocol: "sctp" },
    { containerPort: 80, protocol: null },
    {},
    null,
    80,
    { $: "throwing-getters" },
  );
  const ports: Slot = optional(
    fc.constantFrom<Described>([], [{ containerPort: 80 }]),
    fc.oneof(catalogExcept("array", "undefined"), fc.array(port, { minLength: 1, maxLength: 2 })),
  );
  const positive = (valid: number[]): Slot =>
    optional(
      fc.constantFrom(...valid),
      fc.oneof(
        catalogExcept("undefined"),
        fc.constantFrom<Described>(0, -1, "64m", 1e300, { $: "NaN" }, { $: "Infinity" }),
      ),
    );
  const name: Slot = optional(
    fc.oneof({ weight: 3, arbitrary: fc.constant(`${ctx.namePrefix}-named`) }, catalogOf("oddly")),
    fc.oneof(catalogExcept("string", "undefined"), badStrings, catalogOf("surrogate")),
    6,
  );
  const network: Slot = optional(
    fc.constantFrom("none", "host"),
    fc.oneof(catalogExcept("string", "undefined"), badStrings),
    4,
  );
  const specFields = (image: Slot): Record<string, Slot> => ({
    image,
    command: args([["true"], ["sh", "-c", "exit 3"]]),
    entrypoint: args([["/bin/sh", "-c", "true"]]),
    env,
    workdir: absolutePath(["/", "/tmp"]),
    user,
    mounts,
    ports,
    memory: positive([64 * MiB]),
    cpus: positive([0.5]),
    network,
    tty: bool(),
    stdin: bool(),
    name,
    pod: optional(fc.constant(`${ctx.namePrefix}-nosuch-pod`), id.hostile, 10),
  });
  /** A spec: every field may be broken; labels are always there (so whatever is created is ours). */
  const spec = (image: Slot): Slot => {
    const fields = object(specFields(image), { spec: true });
    return {
      valid: fields.valid.map((s) => ({ ...dropAbsent(s as Record<string, Described>), labels: ctx.labels })),
      hostile: fc.oneof(
        { weight: 8, arbitrary: fields.hostile.map((s) => withLabels(s, ctx.labels)) },
        { weight: 1, arbitrary: labels.hostile.map((l) => ({ image: ctx.missingImage, labels: l })) },
      ),
    };
  };
  // Creating a container is rare: most valid specs name an image no daemon has.
  const createSpec = spec({
    valid: fc.oneof(
      { weight: 11, arbitrary: fc.constant(ctx.missingImage) },
      { weight: 1, arbitrary: fc.constant(ctx.image) },
    ),
    hostile: imageRef.hostile,
  });

  const since: Slot = optional(
    fc.constant(named("epoch-date")),
    fc.oneof(catalogExcept("date", "undefined"), catalogOf("invalid")),
  );
  const count = (hostileToo: Described[]): Slot =>
    optional(
      fc.constantFrom(0, 10),
      fc.oneof(catalogExcept("undefined", "zero"), fc.constantFrom<Described>(...hostileToo)),
    );

  const withArgs = (...slots: Slot[]) => argumentList(slots);
  const portNumber: Slot = {
    valid: fc.constantFrom(80, 8080, 65535),
    hostile: fc.oneof(
      catalogExcept("number"),
      fc.constantFrom<Described>(0, -1, 65536, 1.5, "80", { $: "NaN" }, { $: "Infinity" }),
    ),
  };
  return {
    // Podman takes a second to answer a version, and goes on after the call is cut short: only a few.
    info: { ...withArgs(call("live", [5, 20, 50])), plausibleMax: 3 },
    pull: withArgs(imageRef, object(pullFields)),
    create: withArgs(createSpec, call("optional", [5, 100, 1000])),
    start: withArgs(id, call()),
    run: withArgs(
      createSpec,
      object({
        ...pullFields,
        signal: signal("optional", [20, 300, 3000]),
        remove: bool(),
        pull: bool(),
        onOutput: fn(),
      }),
    ),
    inspect: withArgs(id, call()),
    list: withArgs(object({ signal: signal("optional", [5, 50]), labels: optionalLabels, all: bool() })),
    wait: withArgs(id, call("live", [5, 50])),
    logs: withArgs(
      id,
      object(
        {
          signal: signal("live", [5, 50]),
          follow: bool(),
          since,
          tail: count([-1, 1.5, "10", 2 ** 53]),
          timestamps: bool(),
        },
        { given: true },
      ),
    ),
    exec: withArgs(
      id,
      {
        valid: fc.constantFrom(["true"], ["sh", "-c", "exit 2"]),
        hostile: fc.oneof(
          catalogExcept("array"),
          fc.constantFrom<Described>([], [1], [null], ["a\0b"], "true", [{ $: "huge-nul" }], {
            $: "holey-array",
          }),
        ),
      },
      object({
        signal: signal("optional", [5, 50, 500]),
        env,
        workdir: absolutePath(["/", "/tmp"]),
        user,
        tty: bool(),
        stdin: optional(
          fc.constantFrom<Described>("", "input", named("bytes")),
          fc.oneof(
            catalogExcept("string", "bytes", "undefined"),
            fc.constantFrom<Described>([1, 2], { length: 3 }),
          ),
        ),
        timeout: count([-1, 2 ** 31, "5000", 1e12]),
      }),
    ),
    stop: withArgs(
      id,
      object({
        signal: signal("optional", [5, 50]),
        graceSeconds: count([-1, 1.5, "10", 1e12]),
        signalName: optional(
          fc.constantFrom("SIGTERM", "SIGKILL"),
          fc.oneof(catalogExcept("string", "undefined"), badStrings, fc.constantFrom("SIGNOPE", "9x")),
        ),
      }),
    ),
    kill: withArgs(
      id,
      optional(
        fc.constantFrom("SIGKILL", "KILL", "9"),
        fc.oneof(
          catalogExcept("string", "undefined"),
          badStrings,
          fc.constantFrom<Described>("SIGNOPE", 9, "65"),
        ),
        1,
      ),
      call(),
    ),
    remove: withArgs(id, object({ signal: signal("optional", [5, 50]), force: bool() })),
    pause: withArgs(id, call()),
    unpause: withArgs(id, call()),
    stats: withArgs(id, call()),
    events: withArgs(object({ signal: signal("live", [5, 30]), labels: optionalLabels }, { given: true })),
    endpoint: withArgs(
      id,
      portNumber,
      object({
        signal: signal("optional", [5, 50]),
        protocol: optional(
          fc.constantFrom("tcp", "udp"),
          fc.oneof(catalogExcept("string", "undefined"), badStrings, fc.constantFrom("sctp", "TCP")),
        ),
      }),
    ),
    waitFor: withArgs(
      id,
      {
        valid: fc.constantFrom<Described>(
          { log: "ready" },
          { log: "x", stream: "stderr" },
          { port: 80 },
          { http: { port: 80, path: "/health", status: 204 } },
          { exec: ["true"] },
        ),
        hostile: fc.oneof(
          catalogExcept("objectish"),
          fc.constantFrom<Described>(
            {},
            { log: "x", port: 80 },
            { log: "" },
            { log: "x", stream: "stdin" },
            { log: 5 },
            { log: { $: "huge-a" } },
            { port: 0 },
            { port: "80" },
            { http: { port: 80, path: "/a\r\nHost: evil" } },
            { http: { port: 80, path: "relative" } },
            { http: null },
            { http: { port: 80, status: 1000 } },
            { exec: [] },
            { exec: "true" },
            { exec: [{ $: "huge-nul" }] },
          ),
          catalogOf("throws", "fickle"),
        ),
      },
      object({
        signal: signal("optional", [5, 50, 500]),
        timeout: optional(
          fc.constantFrom(0, 50, 500),
          fc.constantFrom<Described>(-1, "5", 2 ** 31, { $: "NaN" }),
        ),
        interval: optional(
          fc.constantFrom(10, 100),
          fc.constantFrom<Described>(0, -5, "1", { $: "Infinity" }),
        ),
      }),
    ),
  };
}

/** Labels added to a spec object (not to a hostile non-object), unless the spec breaks them itself. */
function withLabels(spec: Described, labels: Record<string, string>): Described {
  if (typeof spec !== "object" || spec === null || Array.isArray(spec) || "$" in spec) return spec;
  return { ...(spec as Record<string, Described>), labels };
}

/** A method's argument lists: broken ones (at least one argument the method must refuse), plausible ones. */
export interface MethodCalls {
  broken: fc.Arbitrary<Described[]>;
  plausible: fc.Arbitrary<Described[]>;
  /** At most this many plausible calls per run (a call that costs the daemon much). */
  plausibleMax?: number;
}

/**
 * Argument lists with one argument broken (the rest anything), and plausible ones (every argument valid:
 * they reach the daemon). Trailing absent arguments are left off the list, as a caller would.
 */
function argumentList(slots: Slot[]): MethodCalls {
  const trim = (list: Described[]) => {
    const out = [...list];
    while (out.length && isAbsent(out[out.length - 1])) out.pop();
    return out;
  };
  const broken = fc
    .nat(slots.length - 1)
    .chain((bad) =>
      fc.tuple(
        ...slots.map((s, i) =>
          i === bad
            ? s.hostile
            : fc.oneof({ weight: 3, arbitrary: s.valid }, { weight: 1, arbitrary: s.hostile }),
        ),
      ),
    );
  return { broken: broken.map(trim), plausible: fc.tuple(...slots.map((s) => s.valid)).map(trim) };
}

// ---------------------------------------------------------------------------------------------------

export interface Materialized {
  args: unknown[];
  /** Live signals of the call, with when each is aborted. */
  live: Array<{ controller: AbortController; ms: number }>;
}

/** The call's arguments from a description: catalog values made, live signals created. */
export function materialize(description: Described[]): Materialized {
  const liveSignals: Materialized["live"] = [];
  const make = (d: Described): unknown => {
    if (Array.isArray(d)) return d.map(make);
    if (typeof d !== "object" || d === null) return d;
    const proto = Object.getPrototypeOf(d);
    if (proto !== Object.prototype && proto !== null) return d;
    const ref = Object.hasOwn(d, "$") ? (d as { $: unknown }).$ : undefined;
    if (ref === "live-signal") {
      const controller = new AbortController();
      liveSignals.push({ controller, ms: (d as { ms: number }).ms });
      return controller.signal;
    }
    if (typeof ref === "string") {
      const entry = CATALOG[ref];
      if (!entry) throw new Error(`hostile-args: no catalog value ${ref}`);
      return entry.make();
    }
    // Own keys as they are, "__proto__" included (Object.fromEntries defines it as a plain property).
    return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, make(v)]));
  };
  return { args: description.map(make), live: liveSignals };
}

const short = (v: string) => (v.length > 200 ? `<${v.length} chars>` : v);

/** A description as one line, long strings (values and keys) named by their length rather than printed. */
export function describe(description: Described[]): string {
  return JSON.stringify(description, (_k, v) => {
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v === "string") return short(v);
    if (
      typeof v === "object" &&
      v !== null &&
      !Array.isArray(v) &&
      Object.keys(v).some((k) => k.length > 200)
    ) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [short(k), x]));
    }
    return v;
  });
}
