// What doctor() reports (and takes), apart from how it finds it: doctor-format.ts reads these types too.
import type { Capabilities } from "@berth/runtime-core";
import type { EnvMap } from "@berth/runtime-core/internal";
import type { Diagnosis, DoctorCheckName } from "./diagnose.js";

/** Options of {@link doctor}. */
export interface DoctorOptions {
  /** A busybox-like image (sh, echo, sleep): default {@link DEFAULT_DOCTOR_IMAGE}. */
  image?: string;
  /** Seconds each check (and each endpoint's probe) may take: default 30. */
  timeoutSeconds?: number;
  /** Where to look for runtimes: default process.env. */
  env?: EnvMap;
  /** Stops the checks; what was created is still removed before doctor() returns. */
  signal?: AbortSignal;
  /** Called as each check finishes, for progress output. */
  onCheck?: (backend: DoctorBackend, check: DoctorCheck) => void;
}

/** A failed check's error, recognised: {@link Diagnosis} plus the error itself. */
export interface DoctorProblem extends Diagnosis {
  /** The error's message. */
  message: string;
  /** The error's class and, for berth's errors, its details. */
  error: {
    /** The error's class name: "UnavailableError", "DaemonError"... */
    name: string;
    /** berth's error code ("Unavailable", "Timeout"...), or Node's errno code. */
    code?: string;
    /** The client operation that failed ("images.pull", "Version"...). */
    operation?: string;
    /** The HTTP status or gRPC status name the daemon answered with. */
    status?: string | number;
    /** The daemon's own message, verbatim. */
    daemonMessage?: string;
  };
}

/** What one check found: `pass`, `fail` (with a problem), or `skip` (with the reason in `detail`). */
export interface DoctorCheck {
  /** Which check. */
  name: DoctorCheckName;
  /** It passed, failed, or did not run (not supported, a check it needs failed, interrupted). */
  status: "pass" | "fail" | "skip";
  /** How long it took, in milliseconds (0 when skipped). */
  durationMs: number;
  /** What was seen (pass), or why the check did not run (skip). */
  detail?: string;
  /** The error, its cause and its fix (fail). */
  problem?: DoctorProblem;
}

/** One backend at one endpoint, and its checks in {@link DOCTOR_CHECKS} order. */
export interface DoctorBackend {
  /** "docker", "podman", "containerd" or "cri". */
  backend: string;
  /** The address tried: unix:///path, tcp://host:port, ssh://..., or a socket path. */
  endpoint: string;
  /** Where the endpoint came from: "DOCKER_HOST", "default socket", "docker context ci"... */
  source: string;
  /** It answered. */
  reachable: boolean;
  /** Reachable and no check failed. */
  ok: boolean;
  /** The daemon's name and version (reachable backends). */
  runtime?: {
    /** "Docker Engine", "Podman", "containerd"... */
    name: string;
    /** The daemon's version. */
    version: string;
    /** The API version spoken (Engine API, CRI runtime API), when the backend has one. */
    apiVersion?: string;
    /** The daemon's operating system, when it says. */
    os?: string;
    /** The daemon's architecture, when it says. */
    arch?: string;
  };
  /** What the backend declares it can do (reachable backends). */
  capabilities?: Capabilities;
  /** One entry per check in {@link DOCTOR_CHECKS}, in that order. */
  checks: DoctorCheck[];
}

/** One endpoint tried: it answered, nothing was there (a default socket that does not exist), or it failed. */
export interface DoctorProbe {
  /** "docker", "podman", "containerd" or "cri". */
  backend: string;
  /** The address tried. */
  endpoint: string;
  /** Where the endpoint came from: "DOCKER_HOST", "default socket"... */
  source: string;
  /** It answered; a default socket that does not exist; or it did not answer (then also in `backends`). */
  outcome: "answered" | "absent" | "failed";
  /** Why it did not answer. */
  message?: string;
}

/** What {@link doctor} found; `--json` prints it as is. */
export interface DoctorReport {
  /** The shape of this document; changes only with a new number. */
  schemaVersion: 1;
  /** berth-sdk's version. */
  version: string;
  /** At least one backend answered, and every backend reported failed no check. */
  ok: boolean;
  /** The signal fired before every check ran. */
  aborted: boolean;
  /** The image pulled and run. */
  image: string;
  /** The label on everything the doctor created (all removed again). */
  label: {
    /** {@link DOCTOR_LABEL}. */
    key: string;
    /** This run's id. */
    value: string;
  };
  /** When the run started, ISO 8601. */
  startedAt: string;
  /** How long the whole run took, in milliseconds. */
  durationMs: number;
  /**
   * Every runtime that answered, and every endpoint that was configured (DOCKER_HOST...) or exists but
   * did not answer; default sockets that do not exist are only in `probed`.
   */
  backends: DoctorBackend[];
  /** Every endpoint tried. */
  probed: DoctorProbe[];
}
