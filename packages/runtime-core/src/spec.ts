// Checks a ContainerSpec before anything reaches a daemon, so bad input fails the same way everywhere, and
// gives back a plain copy of it (read once, only the fields a spec has) for the adapter to work from.
import {
  MAX_ARG_LENGTH,
  MAX_ID_LENGTH,
  MAX_LIST_LENGTH,
  readEnv,
  readId,
  readImage,
  readLabels,
  readPath,
  readUser,
} from "./arg-fields.js";
import { ArgReader, type CallSite, show } from "./arg-reader.js";
import type { BindMount, ContainerSpec, PortMapping, TmpfsMount } from "./runtime.js";

/** Most mounts or port mappings a spec may have. */
const MAX_MOUNTS = 4096;
/** CPU limits from a thousandth of a core (Kubernetes' granularity) to a million cores. */
const CPUS = { min: 0.001, max: 1_000_000, fraction: true };

function readMount(r: ArgReader, value: unknown, what: string): BindMount | TmpfsMount | undefined {
  const m = r.object(value, what, false);
  if (!m) return undefined;
  const type = r.field(m, "type", `${what}.type`);
  const target = readPath(r, r.field(m, "target", `${what}.target`), `${what}.target`);
  if (target === undefined) r.problem(`${what}.target is required`);
  if (type === "bind") {
    const source = readPath(r, r.field(m, "source", `${what}.source`), `${what}.source`);
    if (source === undefined) r.problem(`${what}.source is required`);
    const readonly = r.boolean(r.field(m, "readonly", `${what}.readonly`), `${what}.readonly`);
    return { type, source: source as string, target: target as string, ...(readonly ? { readonly } : {}) };
  }
  if (type === "tmpfs") {
    const size = r.number(r.field(m, "size", `${what}.size`), `${what}.size`, {
      min: 1,
      max: Number.MAX_SAFE_INTEGER,
    });
    return { type, target: target as string, ...(size !== undefined ? { size } : {}) };
  }
  return r.problem(`${what}.type must be "bind" or "tmpfs", got ${show(type)}`);
}

function readPort(r: ArgReader, value: unknown, what: string): PortMapping | undefined {
  const p = r.object(value, what, false);
  if (!p) return undefined;
  const field = (key: string) => r.field(p, key, `${what}.${key}`);
  const containerPort = r.number(field("containerPort"), `${what}.containerPort`, { min: 1, max: 65535 });
  if (containerPort === undefined) r.problem(`${what}.containerPort is required`);
  const hostPort = r.number(field("hostPort"), `${what}.hostPort`, { min: 0, max: 65535 });
  const hostIp = r.string(field("hostIp"), `${what}.hostIp`, { max: 64, nonEmpty: false });
  const protocol = field("protocol");
  if (protocol !== undefined && protocol !== "tcp" && protocol !== "udp") {
    r.problem(`${what}.protocol must be "tcp" or "udp", got ${show(protocol)}`);
  }
  return {
    containerPort: containerPort as number,
    ...(hostPort !== undefined ? { hostPort } : {}),
    ...(hostIp !== undefined ? { hostIp } : {}),
    ...(protocol === "tcp" || protocol === "udp" ? { protocol } : {}),
  };
}

function readList<T>(
  r: ArgReader,
  value: unknown,
  what: string,
  item: (v: unknown, w: string) => T | undefined,
) {
  const list = r.array(value, what, MAX_MOUNTS);
  return list?.map((v, i) => item(v, `${what}[${i}]`)).filter((v): v is T => v !== undefined);
}

/** The spec as read by `r` (problems go to it); a plain copy with the fields given. */
export function readContainerSpec(r: ArgReader, value: unknown): ContainerSpec | undefined {
  const spec = r.object(value, "spec", false);
  if (!spec) return undefined;
  const f = (key: string) => r.field(spec, key, `spec.${key}`);
  const strings = (key: string) =>
    r.strings(f(key), `spec.${key}`, MAX_LIST_LENGTH, { max: MAX_ARG_LENGTH, nonEmpty: false });
  const image = readImage(r, f("image"), "spec.image");
  const [name, pod] = [f("name"), f("pod")];
  const out: ContainerSpec = {
    image: image as string,
    command: strings("command"),
    entrypoint: strings("entrypoint"),
    env: readEnv(r, f("env"), "spec.env"),
    workdir: readPath(r, f("workdir"), "spec.workdir"),
    user: readUser(r, f("user"), "spec.user"),
    labels: readLabels(r, f("labels"), "spec.labels"),
    mounts: readList(r, f("mounts"), "spec.mounts", (v, w) => readMount(r, v, w)),
    ports: readList(r, f("ports"), "spec.ports", (v, w) => readPort(r, v, w)),
    memory: r.number(f("memory"), "spec.memory", { min: 1, max: Number.MAX_SAFE_INTEGER }),
    cpus: r.number(f("cpus"), "spec.cpus", CPUS),
    network: r.string(f("network"), "spec.network", { max: MAX_ID_LENGTH }),
    tty: r.boolean(f("tty"), "spec.tty"),
    stdin: r.boolean(f("stdin"), "spec.stdin"),
    name: name === undefined ? undefined : readId(r, name, "spec.name"),
    pod: pod === undefined ? undefined : readId(r, pod, "spec.pod"),
  };
  for (const key of Object.keys(out) as Array<keyof ContainerSpec>) {
    if (out[key] === undefined) delete out[key];
  }
  return out;
}

/**
 * Throw a ValidationError naming every problem of the spec; returns a plain copy of it when it is sound
 * (the adapters use the copy: each field was read once).
 */
export function validateContainerSpec(
  spec: ContainerSpec,
  at: CallSite = { operation: "validateContainerSpec" },
): ContainerSpec {
  const r = new ArgReader(at);
  const checked = readContainerSpec(r, spec);
  r.finish("invalid container spec");
  return checked as ContainerSpec;
}

/** The spec's env as KEY=VALUE strings. */
export function envList(env: ContainerSpec["env"]): string[] {
  if (!env) return [];
  return Array.isArray(env) ? [...env] : Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
