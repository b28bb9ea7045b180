// What went wrong, in a user's words: the doctor's cause and fix for a failed check, recognised from
// berth's typed errors and what they wrap (a Node errno, a daemon's own message).
import {
  AbortedError,
  ApiVersionError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
  UnsupportedError,
} from "@berth/runtime-core";

/** The checks `doctor()` runs on each backend, in order. */
export type DoctorCheckName =
  | "version"
  | "list"
  | "pull"
  | "run"
  | "exec"
  | "logs"
  | "events"
  | "stop"
  | "remove";

/** Every check, in the order it runs. */
export const DOCTOR_CHECKS: readonly DoctorCheckName[] = [
  "version",
  "list",
  "pull",
  "run",
  "exec",
  "logs",
  "events",
  "stop",
  "remove",
];

/**
 * The kinds of problem the doctor recognises. `error` is anything else: its cause is the error's own
 * message.
 */
export type ProblemKind =
  | "permission-denied"
  | "socket-missing"
  | "not-a-socket"
  | "connection-refused"
  | "daemon-unavailable"
  | "api-too-old"
  | "cni-plugin-missing"
  | "cni-config-missing"
  | "registry-auth"
  | "registry-unreachable"
  | "registry-tls"
  | "image-not-found"
  | "timeout"
  | "aborted"
  | "unsupported"
  | "error";

/** One recognised problem: what it is, why it happened, and what to do about it. */
export interface Diagnosis {
  /** What kind of problem it is. */
  kind: ProblemKind;
  /** Why, in plain words. */
  cause: string;
  /** What to do about it. */
  fix: string;
}

/** Where the error came from: the backend, its endpoint, and the check that failed. */
export interface DiagnoseContext {
  /** "docker", "podman", "containerd" or "cri": the fix names that backend's variable and service. */
  backend: string;
  /** The check that failed: "version" is connecting, "pull" is the registry's side too. */
  check: DoctorCheckName;
  /** The daemon's address (unix:///path, tcp://...), to tell its errors from a registry's. */
  endpoint?: string | undefined;
  /** The per-check limit the doctor used, in seconds. */
  timeoutSeconds?: number | undefined;
}

interface Facts {
  errors: unknown[];
  codes: Set<string>;
  text: string;
}

/** The error and everything it wraps (cause chains, AggregateError's errors), at most 20 deep. */
function factsOf(err: unknown): Facts {
  const errors: unknown[] = [];
  const codes = new Set<string>();
  const texts: string[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && errors.length < 20) {
    const e = queue.shift();
    if (e === undefined || e === null || errors.includes(e)) continue;
    errors.push(e);
    if (typeof e !== "object") {
      texts.push(String(e));
      continue;
    }
    const o = e as { code?: unknown; message?: unknown; daemonMessage?: unknown; cause?: unknown };
    if (typeof o.code === "string") codes.add(o.code);
    if (typeof o.message === "string") texts.push(o.message);
    if (typeof o.daemonMessage === "string") texts.push(o.daemonMessage);
    queue.push(o.cause);
    if (e instanceof AggregateError) queue.push(...e.errors);
  }
  return { errors, codes, text: texts.join("\n") };
}

const some = (f: Facts, ctor: abstract new (...args: never[]) => Error) =>
  f.errors.some((e) => e instanceof ctor);
const first = <T extends Error>(f: Facts, ctor: abstract new (...args: never[]) => T): T | undefined =>
  f.errors.find((e): e is T => e instanceof ctor);

const socketOf = (endpoint: string | undefined) =>
  endpoint?.startsWith("unix://")
    ? endpoint.slice("unix://".length)
    : endpoint?.startsWith("/")
      ? endpoint
      : undefined;

/** The variable that points berth at this backend. */
export function envVariableOf(backend: string): string {
  switch (backend) {
    case "docker":
      return "DOCKER_HOST";
    case "podman":
      return "PODMAN_HOST (or CONTAINER_HOST)";
    case "containerd":
      return "CONTAINERD_ADDRESS";
    case "cri":
      return "CONTAINER_RUNTIME_ENDPOINT";
    default:
      return "BERTH_RUNTIME and the backend's own variable";
  }
}

/** How to start this backend's daemon on a systemd machine. */
export function howToStart(backend: string): string {
  switch (backend) {
    case "docker":
      return "start it with `sudo systemctl start docker` (rootless: `systemctl --user start docker`)";
    case "podman":
      return "start its API service with `sudo systemctl start podman.socket` (rootless: `systemctl --user start podman.socket`, or `podman system service --time=0`)";
    case "containerd":
      return "start it with `sudo systemctl start containerd`";
    case "cri":
      return "start the CRI runtime with `sudo systemctl start containerd` (or `crio`)";
    default:
      return "start the daemon";
  }
}

function permissionFix(backend: string): string {
  switch (backend) {
    case "docker":
      return "run as root or as a user in the docker group (`sudo usermod -aG docker $USER`, then log in again), or point DOCKER_HOST at a daemon you may use (rootless Docker: unix://$XDG_RUNTIME_DIR/docker.sock)";
    case "podman":
      return "run as root, or use rootless Podman: `systemctl --user start podman.socket` and PODMAN_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock";
    default:
      return `run as root (the socket is root's), or point ${envVariableOf(backend)} at a socket you may use`;
  }
}

function apiFix(backend: string): string {
  switch (backend) {
    case "docker":
      return "upgrade Docker Engine (berth speaks Engine API 1.24 to 1.51; a feature may need a newer one)";
    case "podman":
      return "upgrade Podman (its Docker-compatible API must be 1.24 or later)";
    case "cri":
      return "upgrade the runtime to one that serves CRI runtime.v1 (containerd 1.6 or later, CRI-O 1.20 or later)";
    default:
      return "upgrade the daemon";
  }
}

const NETWORK =
  /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)\b|no such host|connection refused|connection reset|i\/o timeout|dial tcp|network is unreachable|TLS handshake timeout|fetch failed|Client\.Timeout/i;
const TLS = /server gave HTTP response to HTTPS client|x509|certificate|\btls\b|SSL/i;
const AUTH =
  /unauthori[sz]ed|authentication required|access denied|requested access to the resource is denied|\b(401|403)\b|forbidden|may require 'docker login'/i;
const MISSING_IMAGE = /manifest unknown|not found|does not exist|no such image|name unknown/i;

/**
 * The cause and fix of a failed doctor check, recognised from berth's typed errors and what they wrap:
 * socket permission denied (EACCES), socket missing (ENOENT), connection refused, daemon API too old,
 * missing CNI plugins or configuration on a CRI runtime, image pull failures (authentication, registry
 * unreachable, TLS, no such image) and timeouts. Anything else is kind `error`, its message the cause.
 */
export function diagnose(err: unknown, context: DiagnoseContext): Diagnosis {
  const f = factsOf(err);
  const { backend, check } = context;
  const variable = envVariableOf(backend);
  const socket = socketOf(context.endpoint);
  const where = socket ? `socket ${socket}` : (context.endpoint ?? "its endpoint");
  const limit = context.timeoutSeconds ? `${context.timeoutSeconds} s` : "the time allowed";

  if (some(f, AbortedError) && !some(f, TimeoutError)) {
    return {
      kind: "aborted",
      cause: "interrupted before the check finished (Ctrl-C or the caller's signal)",
      fix: "run it again",
    };
  }
  const api = first(f, ApiVersionError);
  if (api) {
    const versions =
      api.actual && api.required ? ` (the daemon speaks ${api.actual}; this needs ${api.required})` : "";
    return { kind: "api-too-old", cause: `the daemon's API is too old${versions}`, fix: apiFix(backend) };
  }
  const plugin = /failed to find plugin "([^"]+)"/i.exec(f.text)?.[1];
  if (plugin) {
    return {
      kind: "cni-plugin-missing",
      cause: `the CNI ${plugin} plugin is missing: the runtime's network configuration uses it, so no pod gets a network${plugin === "portmap" ? " (portmap publishes the pods' ports)" : ""}`,
      fix: `install the CNI plugins (Debian: \`apt install containernetworking-plugins\`, or the release of github.com/containernetworking/plugins in /opt/cni/bin) and make the runtime's CNI bin_dir include the directory ${plugin} is in`,
    };
  }
  if (
    /cni config uninitiali[sz]ed|no network config found|cni plugin not initiali[sz]ed|NetworkPluginNotReady|network plugin is not ready/i.test(
      f.text,
    )
  ) {
    return {
      kind: "cni-config-missing",
      cause: "the CRI runtime has no CNI network configuration, so it cannot give a pod a network",
      fix: "put a CNI network list in the runtime's conf_dir (usually /etc/cni/net.d, for example a bridge network with host-local IPAM and portmap; Debian's containernetworking-plugins has the plugins), then restart the runtime",
    };
  }

  // The daemon's socket itself: refused, missing, not ours to use. In a pull, only when the error names
  // the daemon's socket (a registry's refusal is the registry's).
  const daemonSide =
    check !== "pull"
      ? check === "version" || some(f, UnavailableError)
      : socket !== undefined && f.text.includes(socket);
  if (daemonSide) {
    if (
      f.codes.has("EACCES") ||
      f.codes.has("EPERM") ||
      /permission denied|\bEACCES\b|\bEPERM\b/i.test(f.text)
    ) {
      return {
        kind: "permission-denied",
        cause: `permission denied on the ${where}: this user may not use the daemon`,
        fix: permissionFix(backend),
      };
    }
    if (f.codes.has("ENOENT") || /does not exist|\bENOENT\b/.test(f.text)) {
      return {
        kind: "socket-missing",
        cause: `the daemon is not running (the ${where} does not exist)`,
        fix: `${howToStart(backend)}, or set ${variable} to where it listens`,
      };
    }
    if (/is not a socket/.test(f.text)) {
      return {
        kind: "not-a-socket",
        cause: `${socket ?? context.endpoint} is not a socket`,
        fix: `set ${variable} to the daemon's socket`,
      };
    }
    if (f.codes.has("ECONNREFUSED") || /connection refused|\bECONNREFUSED\b/i.test(f.text)) {
      return {
        kind: "connection-refused",
        cause: `nothing accepts connections on the ${where}: the daemon stopped or crashed and left its socket behind`,
        fix: `${howToStart(backend).replace(/^start/, "restart")} (see its log: \`journalctl -u <service>\`), or set ${variable} to where it listens`,
      };
    }
  }
  if (some(f, TimeoutError) || /deadline exceeded|DEADLINE_EXCEEDED/i.test(f.text)) {
    return check === "pull"
      ? {
          kind: "timeout",
          cause: `the pull did not finish within ${limit}: a slow or unreachable registry, or a big image`,
          fix: "give it longer (--timeout <seconds>), or pull from a registry nearer the daemon (--image <ref>)",
        }
      : {
          kind: "timeout",
          cause: `the daemon did not answer within ${limit}: it is overloaded, hung, or waiting on something`,
          fix: `check the daemon's health and log, or give it longer (--timeout <seconds>)`,
        };
  }
  if (check === "pull") {
    if (some(f, UnauthorizedError) || AUTH.test(f.text)) {
      return {
        kind: "registry-auth",
        cause:
          "the registry refused the pull: it wants credentials, refused the ones given, or the repository does not exist",
        fix: "log in to the registry (`docker login <registry>`: berth reads ~/.docker/config.json and its credential helpers) and check the image name (--image <ref>)",
      };
    }
    if (TLS.test(f.text)) {
      return {
        kind: "registry-tls",
        cause:
          "the registry's TLS did not work out: a certificate the daemon does not trust, or a plain-HTTP registry asked for over HTTPS",
        fix: "trust the registry's CA on the daemon's machine, or list a plain-HTTP registry as insecure in the daemon's configuration (Docker: insecure-registries; containerd: a hosts.toml; Podman: registries.conf)",
      };
    }
    if (NETWORK.test(f.text) || some(f, UnavailableError)) {
      return {
        kind: "registry-unreachable",
        cause:
          "the registry could not be reached from the daemon's machine (DNS, network, firewall or proxy)",
        fix: "check the machine's network and proxy settings (the daemon's HTTPS_PROXY), or pull from a registry it can reach: --image <registry>/busybox:latest",
      };
    }
    if (some(f, NotFoundError) || MISSING_IMAGE.test(f.text)) {
      return {
        kind: "image-not-found",
        cause: "the registry has no such image or tag",
        fix: "check the image reference given with --image",
      };
    }
  }
  if (some(f, UnsupportedError)) {
    return {
      kind: "unsupported",
      cause: "the backend cannot do this",
      fix: "nothing to fix: use a backend whose capabilities include it",
    };
  }
  if (some(f, UnavailableError)) {
    return {
      kind: "daemon-unavailable",
      cause: "the daemon stopped answering in the middle of the check",
      fix: `check that it still runs (${howToStart(backend)}) and look at its log`,
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return {
    kind: "error",
    cause: message.split("\n")[0] ?? message,
    fix: "see the daemon's log around this time; --json shows the whole error",
  };
}
