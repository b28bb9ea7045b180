// Checks a ContainerSpec before anything reaches a daemon, so bad input fails the same way everywhere.
import { ValidationError } from "./errors.js";
import { parseImageRef } from "./image-ref.js";
import type { ContainerSpec } from "./runtime.js";

const USER = /^([a-z_][a-z0-9_.-]*\$?|\d+)(:([a-z_][a-z0-9_.-]*|\d+))?$/i;
const ENV_KEY = /^[^=\0]+$/;

/** Throw a ValidationError naming every problem of the spec; returns it unchanged when it is sound. */
export function validateContainerSpec(spec: ContainerSpec): ContainerSpec {
  const problems: string[] = [];
  if (typeof spec?.image !== "string" || spec.image === "") problems.push("image is required");
  else {
    try {
      parseImageRef(spec.image);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0))
      problems.push(`${name} must be a positive number, got ${v}`);
  };
  positive("memory", spec.memory);
  positive("cpus", spec.cpus);
  if (spec.user !== undefined && !USER.test(spec.user))
    problems.push(`user "${spec.user}" is not a user or uid[:gid]`);
  const envKeys = Array.isArray(spec.env)
    ? spec.env.map((e) => e.split("=")[0] ?? "")
    : Object.keys(spec.env ?? {});
  for (const key of envKeys) if (!ENV_KEY.test(key)) problems.push(`env name "${key}" is invalid`);
  if (Array.isArray(spec.env)) {
    for (const e of spec.env) if (!e.includes("=")) problems.push(`env entry "${e}" is not KEY=VALUE`);
  }
  for (const m of spec.mounts ?? []) {
    if (!m.target?.startsWith("/")) problems.push(`mount target "${m.target}" must be an absolute path`);
    if (m.type === "bind" && !m.source?.startsWith("/")) {
      problems.push(`bind mount source "${m.source}" must be an absolute path`);
    }
  }
  for (const p of spec.ports ?? []) {
    const ok = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 0 && n <= 65535);
    if (!ok(p.containerPort) || p.containerPort === 0 || !ok(p.hostPort)) {
      problems.push(`port mapping ${JSON.stringify(p)} is out of range`);
    }
  }
  if (spec.workdir !== undefined && !spec.workdir.startsWith("/")) {
    problems.push(`workdir "${spec.workdir}" must be an absolute path`);
  }
  if (problems.length) {
    throw new ValidationError(`invalid container spec: ${problems.join("; ")}`, {
      operation: "validateContainerSpec",
    });
  }
  return spec;
}

/** The spec's env as KEY=VALUE strings. */
export function envList(env: ContainerSpec["env"]): string[] {
  if (!env) return [];
  return Array.isArray(env) ? [...env] : Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
