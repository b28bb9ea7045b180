// runtime-core's ContainerSpec as OCI spec options over an image config, with Docker's meaning of
// command and entrypoint. containerd has no networking of its own (no CNI outside CRI), so published
// ports and the "bridge" network are refused here, before anything reaches the daemon.
import { type ContainerSpec, envList, UnsupportedError, ValidationError } from "@berth/runtime-core";
import type { ociImageSpec } from "./generated/index.js";
import {
  type SpecMount,
  type SpecOpt,
  withCpuLimit,
  withEnv,
  withHostNetwork,
  withHostname,
  withMemoryLimit,
  withMounts,
  withProcessArgs,
  withProcessCwd,
  withTty,
  withUser,
} from "./oci/spec.js";

/** containerd's identifier rule (ids of containers, namespaces, leases...). */
const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const MAX_IDENTIFIER = 76;

/** Throw a ValidationError unless `id` is a valid containerd identifier. */
export function checkContainerId(id: string): void {
  if (id.length > MAX_IDENTIFIER || !IDENTIFIER.test(id)) {
    throw new ValidationError(
      `container name ${JSON.stringify(id)} is not a containerd identifier ` +
        `(letters and digits, single . _ - between them, at most ${MAX_IDENTIFIER} characters)`,
      { operation: "validateContainerSpec", backend: "containerd" },
    );
  }
}

/**
 * The process arguments, as Docker builds them: an entrypoint given replaces the image's Entrypoint and
 * Cmd; a command given replaces the image's Cmd and runs under the image's Entrypoint.
 */
export function processArgs(
  spec: Pick<ContainerSpec, "command" | "entrypoint">,
  image: ociImageSpec.ImageConfig,
): string[] {
  const c = image.config ?? {};
  const args = spec.entrypoint
    ? [...spec.entrypoint, ...(spec.command ?? [])]
    : [...(c.Entrypoint ?? []), ...(spec.command ?? c.Cmd ?? [])];
  if (args.length === 0) {
    throw new ValidationError("no command: the spec and the image give neither an entrypoint nor a command", {
      operation: "validateContainerSpec",
      backend: "containerd",
    });
  }
  return args;
}

/** Throw UnsupportedError for what containerd alone cannot do (checked before anything is created). */
export function checkSupported(spec: ContainerSpec): void {
  const unsupported = (what: string) =>
    new UnsupportedError(`containerd: ${what}`, { operation: "create", backend: "containerd" });
  if (spec.ports?.length) {
    throw unsupported("published ports need a network with an address on the host; containerd has none");
  }
  if (spec.network !== undefined && !["host", "none"].includes(spec.network)) {
    throw unsupported(
      `network ${JSON.stringify(spec.network)}: containerd has no networks of its own; use "host", or ` +
        `"none" (the default: a private network namespace with loopback only)`,
    );
  }
  if (spec.stdin && !spec.tty) {
    throw unsupported(
      "stdin for the main process without a tty: the shim does not connect stdin when output goes to a " +
        "logging binary (use tty: true, or exec with stdin)",
    );
  }
  if (spec.pod !== undefined) throw unsupported("pods are a CRI notion");
}

function mounts(spec: ContainerSpec): SpecMount[] {
  return (spec.mounts ?? []).map((m) =>
    m.type === "bind"
      ? {
          destination: m.target,
          type: "bind",
          source: m.source,
          options: ["rbind", m.readonly ? "ro" : "rw"],
        }
      : {
          destination: m.target,
          type: "tmpfs",
          source: "tmpfs",
          options: ["nosuid", "nodev", "mode=1777", ...(m.size ? [`size=${m.size}`] : [])],
        },
  );
}

/**
 * The spec options for a container `id` from `spec` over its image's config (applied after
 * withImageConfig, so each replaces what the image said).
 */
export function containerSpecOpts(
  spec: ContainerSpec,
  image: ociImageSpec.ImageConfig,
  id: string,
): SpecOpt[] {
  checkSupported(spec);
  const opts: SpecOpt[] = [withProcessArgs(...processArgs(spec, image))];
  const env = envList(spec.env);
  if (env.length) opts.push(withEnv(env));
  if (spec.workdir) opts.push(withProcessCwd(spec.workdir));
  if (spec.user) opts.push(withUser(spec.user));
  if (spec.mounts?.length) opts.push(withMounts(mounts(spec)));
  if (spec.memory !== undefined) opts.push(withMemoryLimit(spec.memory));
  if (spec.cpus !== undefined) opts.push(withCpuLimit(spec.cpus));
  if (spec.tty) opts.push(withTty(true));
  if (spec.network === "host") opts.push(withHostNetwork());
  // Like Docker: the container's own hostname, its name or the start of its id.
  else opts.push(withHostname(spec.name ? id.slice(0, 63) : id.slice(0, 12)));
  return opts;
}
