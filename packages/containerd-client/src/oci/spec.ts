// The OCI runtime spec for a Linux container, built from defaults equivalent to containerd's and small
// options that each change one part of it (containerd's oci.With* functions, in TypeScript).
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ValidationError } from "@berth/runtime-core";
import type { ociImageSpec, ociRuntimeSpec } from "../generated/index.js";
import { resolveUser } from "./user.js";

/** An OCI runtime spec (config.json) for a Linux container, as containerd stores it with a container. */
export type Spec = ociRuntimeSpec.Spec;
/** One mount of an OCI runtime spec: destination in the container, type, source and options. */
export type SpecMount = ociRuntimeSpec.Mount;
type Process = NonNullable<Spec["process"]>;

/** What options may consult: the container's identity and files read from its image rootfs. */
export interface SpecContext {
  /** The container's id; the default spec's cgroup path ends with it. */
  id: string;
  /** The containerd namespace the container is in; the default spec's cgroup path starts with it. */
  namespace: string;
  /** The text of the rootfs's /etc/passwd, when the caller could read it (user names resolve with it). */
  passwd?: string | undefined;
  /** The text of the rootfs's /etc/group, when the caller could read it (group names resolve with it). */
  group?: string | undefined;
}

/** One change to a spec, made in place; options apply in order, so a later one wins. */
export type SpecOpt = (spec: Spec, ctx: SpecContext) => void;

/** The OCI runtime spec version the default spec declares (`ociVersion`). */
export const OCI_VERSION = "1.1.0";
/** The PATH a process gets when the image sets none (containerd's default). */
export const DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** The capabilities containerd (and Docker) grant by default. */
export const DEFAULT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];
/** Every capability, by number; privileged containers get those the kernel knows. */
const ALL_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];
/** Paths the default spec hides from the container (containerd's); privileged containers see them. */
export const DEFAULT_MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
  "/proc/scsi",
];
/** Paths the default spec mounts read-only (containerd's defaults); privileged containers may write them. */
export const DEFAULT_READONLY_PATHS = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

function defaultMounts(): SpecMount[] {
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    {
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
    },
    {
      destination: "/run",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
  ];
}

/** containerd's default Linux spec for a container `ctx.id` in namespace `ctx.namespace`. */
export function defaultSpec(ctx: SpecContext): Spec {
  return {
    ociVersion: OCI_VERSION,
    root: { path: "rootfs" },
    process: {
      cwd: "/",
      noNewPrivileges: true,
      user: { uid: 0, gid: 0 },
      env: [DEFAULT_PATH_ENV],
      capabilities: {
        bounding: [...DEFAULT_CAPABILITIES],
        permitted: [...DEFAULT_CAPABILITIES],
        effective: [...DEFAULT_CAPABILITIES],
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
    },
    mounts: defaultMounts(),
    linux: {
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
      cgroupsPath: `/${ctx.namespace}/${ctx.id}`,
      resources: { devices: [{ allow: false, access: "rwm" }] },
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }],
    },
  };
}

/** The default spec with the options applied in order. */
export function buildSpec(ctx: SpecContext, ...opts: SpecOpt[]): Spec {
  const spec = defaultSpec(ctx);
  for (const opt of opts) opt(spec, ctx);
  return spec;
}

function proc(spec: Spec): Process {
  spec.process ??= { cwd: "/" };
  return spec.process;
}

/** Set or replace environment variables ("KEY=value"); a later value for a key wins. */
export function withEnv(env: readonly string[] | Record<string, string>): SpecOpt {
  const list = Array.isArray(env)
    ? (env as readonly string[])
    : Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return (spec) => {
    const p = proc(spec);
    const out = [...(p.env ?? [])];
    for (const kv of list) {
      const key = kv.split("=", 1)[0];
      const i = out.findIndex((e) => e.split("=", 1)[0] === key);
      if (i >= 0) out[i] = kv;
      else out.push(kv);
    }
    p.env = out;
  };
}

/** Set the process's command line (argv, the executable first); after withImageConfig, it replaces the
 *  image's entrypoint and cmd. */
export function withProcessArgs(...args: string[]): SpecOpt {
  return (spec) => {
    proc(spec).args = [...args];
  };
}

/** Set the process's working directory (an absolute path in the container). */
export function withProcessCwd(cwd: string): SpecOpt {
  return (spec) => {
    proc(spec).cwd = cwd;
  };
}

/** Run as "user[:group]" (names resolved with the rootfs /etc/passwd and /etc/group) or as numeric ids. */
export function withUser(user: string | { uid: number; gid: number }): SpecOpt {
  return (spec, ctx) => {
    const p = proc(spec);
    if (typeof user !== "string") {
      p.user = { uid: user.uid, gid: user.gid };
      return;
    }
    const r = resolveUser(user, ctx.passwd, ctx.group);
    p.user = {
      uid: r.uid,
      gid: r.gid,
      ...(r.additionalGids.length ? { additionalGids: r.additionalGids } : {}),
    };
  };
}

/** Env, Entrypoint + Cmd, WorkingDir and User from an image config. */
export function withImageConfig(image: ociImageSpec.ImageConfig): SpecOpt {
  return (spec, ctx) => {
    const c = image.config ?? {};
    withEnv(c.Env ?? [])(spec, ctx);
    const args = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
    if (args.length) proc(spec).args = args;
    proc(spec).cwd = c.WorkingDir || "/";
    withUser(c.User ?? "")(spec, ctx);
  };
}

/** Set the container's hostname (in its own UTS namespace, which the default spec has). */
export function withHostname(hostname: string): SpecOpt {
  return (spec) => {
    spec.hostname = hostname;
  };
}

/** Add mounts; one with the destination of an existing mount replaces it. */
export function withMounts(mounts: readonly SpecMount[]): SpecOpt {
  return (spec) => {
    const out = (spec.mounts ?? []).filter((m) => !mounts.some((n) => n.destination === m.destination));
    spec.mounts = [...out, ...mounts.map((m) => ({ ...m }))];
  };
}

/** Give the process a terminal (`terminal: true`), or take it away with `false`. */
export function withTty(terminal = true): SpecOpt {
  return (spec) => {
    proc(spec).terminal = terminal;
  };
}

function resources(spec: Spec): NonNullable<NonNullable<Spec["linux"]>["resources"]> {
  spec.linux ??= {};
  spec.linux.resources ??= {};
  return spec.linux.resources;
}

/** Memory limit in bytes. */
export function withMemoryLimit(bytes: number): SpecOpt {
  if (!Number.isInteger(bytes) || bytes <= 0) {
    throw new ValidationError(`memory limit must be a positive integer of bytes, got ${bytes}`, {
      operation: "oci.withMemoryLimit",
    });
  }
  return (spec) => {
    const r = resources(spec);
    r.memory = { ...r.memory, limit: bytes };
  };
}

/** CPU limit in CPUs (1.5 = one and a half), as a CFS quota over a 100 ms period. */
export function withCpuLimit(cpus: number, periodMicros = 100_000): SpecOpt {
  if (!(cpus > 0)) {
    throw new ValidationError(`CPU limit must be positive, got ${cpus}`, { operation: "oci.withCpuLimit" });
  }
  return (spec) => {
    const r = resources(spec);
    r.cpu = { ...r.cpu, period: periodMicros, quota: Math.round(cpus * periodMicros) };
  };
}

function kernelCapabilities(): string[] {
  try {
    const last = Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8").trim());
    if (Number.isInteger(last)) return ALL_CAPABILITIES.slice(0, last + 1);
  } catch {}
  return ALL_CAPABILITIES.slice(0, 38);
}

/**
 * The capabilities this process holds (its effective set), as containerd's WithAllCurrentCapabilities
 * grants a privileged container: a sandbox or user namespace may lack some the kernel knows, and runc
 * refuses to grant what its caller lacks.
 */
export function currentCapabilities(status?: string): string[] {
  const known = kernelCapabilities();
  try {
    const text = status ?? readFileSync("/proc/self/status", "utf8");
    const hex = /^CapEff:\s*([0-9a-f]+)$/im.exec(text)?.[1];
    if (hex === undefined) return known;
    const bits = BigInt(`0x${hex}`);
    return known.filter((_, i) => (bits >> BigInt(i)) & 1n);
  } catch {
    return known;
  }
}

/** What `privileged` means in containerd: every capability this process holds, no masked or read-only
 *  paths, writable /sys and cgroups, all devices allowed in the device cgroup. The host's devices are
 *  added to /dev only by withHostDevices (as `ctr run --privileged` adds both). */
export function withPrivileged(): SpecOpt {
  return (spec) => {
    const caps = currentCapabilities();
    proc(spec).capabilities = { bounding: caps, permitted: caps, effective: caps };
    spec.linux ??= {};
    spec.linux.maskedPaths = [];
    spec.linux.readonlyPaths = [];
    resources(spec).devices = [{ allow: true, access: "rwm" }];
    for (const m of spec.mounts ?? []) {
      if (m.destination === "/sys" || m.destination === "/sys/fs/cgroup") {
        m.options = (m.options ?? []).filter((o) => o !== "ro");
      }
    }
  };
}

/** Directories of the host's /dev that hold no device a container should be given (containerd skips them). */
const SKIPPED_DEV_DIRS = new Set(["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]);

/** The character and block devices under `dir` (the host's /dev), as OCI device entries. */
export function hostDevices(dir = "/dev"): NonNullable<NonNullable<Spec["linux"]>["devices"]> {
  const out: NonNullable<NonNullable<Spec["linux"]>["devices"]> = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (path === "/dev/console") continue;
    // lstat: a link (/dev/stdin, /dev/core) is skipped; the device it names is listed under its own name.
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) {
      if (!SKIPPED_DEV_DIRS.has(name)) out.push(...hostDevices(path));
      continue;
    }
    const type = st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : undefined;
    if (!type) continue;
    const rdev = Number(st.rdev);
    out.push({
      type,
      path,
      // Linux's encoding of a device number (glibc's gnu_dev_major/minor).
      major: ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff),
      minor: (rdev & 0xff) | ((rdev >>> 12) & ~0xff),
      fileMode: Number(st.mode) & 0o777,
      uid: Number(st.uid),
      gid: Number(st.gid),
    });
  }
  return out;
}

/**
 * Give the container every device of the host (as `ctr run --privileged` does, next to withPrivileged,
 * which allows their use in the device cgroup): read from this host's /dev, so only for a containerd on
 * this host.
 */
export function withHostDevices(dir = "/dev"): SpecOpt {
  return (spec) => {
    spec.linux ??= {};
    const have = new Set((spec.linux.devices ?? []).map((d) => d.path));
    spec.linux.devices = [
      ...(spec.linux.devices ?? []),
      ...hostDevices(dir).filter((d) => !have.has(d.path)),
    ];
  };
}

/** Mount the container's root filesystem read-only (`false` makes it writable again). */
export function withReadonlyRootfs(readonly = true): SpecOpt {
  return (spec) => {
    spec.root = { path: spec.root?.path ?? "rootfs", readonly };
  };
}

/** Share the host's network namespace (and, so names resolve, its /etc/hosts and /etc/resolv.conf). */
export function withHostNetwork(): SpecOpt {
  return (spec, ctx) => {
    if (spec.linux?.namespaces)
      spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== "network");
    withMounts([
      { destination: "/etc/hosts", type: "bind", source: "/etc/hosts", options: ["rbind", "ro"] },
      { destination: "/etc/resolv.conf", type: "bind", source: "/etc/resolv.conf", options: ["rbind", "ro"] },
    ])(spec, ctx);
  };
}

/** Raise or add an rlimit. */
export function withRlimit(type: string, soft: number, hard = soft): SpecOpt {
  return (spec) => {
    const p = proc(spec);
    p.rlimits = [...(p.rlimits ?? []).filter((r) => r.type !== type), { type, soft, hard }];
  };
}
