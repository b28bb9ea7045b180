// The doctor's report for people: a table of backend × check, each failure's cause and fix, and when
// nothing answered, what was probed and how to point berth at a daemon.
import { DOCTOR_CHECKS, howToStart } from "./diagnose.js";
import type { DoctorBackend, DoctorCheck, DoctorReport } from "./doctor-report.js";

const MARK: Record<DoctorCheck["status"], string> = { pass: "ok", fail: "FAIL", skip: "-" };

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  const line = (r: string[]) =>
    r
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  const [head, ...body] = rows;
  return head ? [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)] : [];
}

const firstLine = (s: string) => s.split("\n")[0] ?? s;

function runtimeOf(b: DoctorBackend): string {
  if (!b.runtime) return "(not reachable)";
  return `${b.runtime.name} ${b.runtime.version}${b.runtime.apiVersion ? ` (API ${b.runtime.apiVersion})` : ""}`;
}

/** How to point berth at a daemon, one line per backend. */
export const POINTING = [
  "  DOCKER_HOST=unix:///var/run/docker.sock (or tcp://host:2376 with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or ssh://user@host; DOCKER_CONTEXT picks a Docker context)",
  "  PODMAN_HOST=unix:///run/podman/podman.sock (also CONTAINER_HOST; rootless: unix://$XDG_RUNTIME_DIR/podman/podman.sock)",
  '  CONTAINERD_ADDRESS=/run/containerd/containerd.sock (with CONTAINERD_NAMESPACE, default "default")',
  "  CONTAINER_RUNTIME_ENDPOINT=unix:///run/containerd/containerd.sock or unix:///var/run/crio/crio.sock (or runtime-endpoint in /etc/crictl.yaml)",
  "  BERTH_RUNTIME=docker|podman|containerd|cri limits the search to one backend",
];

/** The report as text for a terminal. */
export function formatReport(report: DoctorReport): string {
  const out: string[] = [];
  const reachable = report.backends.filter((b) => b.reachable);
  out.push(
    `berth-sdk doctor ${report.version}: image ${report.image}, ${(report.durationMs / 1000).toFixed(1)} s`,
  );
  out.push("");
  if (reachable.length === 0) {
    // No table: every row would say "not reachable". What was tried, and why each failed.
    out.push("No container runtime answered. Probed:");
    for (const p of report.probed) {
      const problem = report.backends
        .find((b) => b.backend === p.backend && b.endpoint === p.endpoint)
        ?.checks.find((c) => c.problem)?.problem;
      out.push(`  ${p.backend.padEnd(10)} ${p.endpoint} (${p.source}): ${firstLine(p.message ?? p.outcome)}`);
      if (problem) out.push(`             cause: ${problem.cause}`, `             fix:   ${problem.fix}`);
    }
    out.push("", "Point berth at a daemon with the runtimes' own variables:", ...POINTING);
    out.push("or start one:");
    for (const backend of new Set(report.probed.map((p) => p.backend))) {
      out.push(`  ${backend.padEnd(10)} ${howToStart(backend)}`);
    }
    out.push("");
  } else {
    const rows = [
      ["backend", "runtime", ...DOCTOR_CHECKS, "time"],
      ...report.backends.map((b) => [
        b.backend,
        runtimeOf(b),
        ...DOCTOR_CHECKS.map((name) => MARK[b.checks.find((c) => c.name === name)?.status ?? "skip"]),
        `${(b.checks.reduce((sum, c) => sum + c.durationMs, 0) / 1000).toFixed(1)} s`,
      ]),
    ];
    out.push(...table(rows), "", "endpoints:");
    for (const b of report.backends) out.push(`  ${b.backend.padEnd(10)} ${b.endpoint} (${b.source})`);
    out.push("");
    const failures = report.backends.flatMap((b) => b.checks.map((c) => ({ b, c })));
    const problems = failures.filter(({ c }) => c.status === "fail" && c.problem);
    if (problems.length > 0) {
      out.push("problems:");
      for (const { b, c } of problems) {
        const p = c.problem;
        if (!p) continue;
        out.push(`  ${b.backend} ${c.name} [${p.kind}]: ${firstLine(p.message)}`);
        out.push(`    cause: ${p.cause}`, `    fix:   ${p.fix}`);
      }
      out.push("");
    }
    const absent = report.probed.filter((p) => p.outcome === "absent");
    if (absent.length > 0) {
      out.push(
        `not there (default sockets that do not exist): ${absent.map((p) => `${p.backend} ${p.endpoint}`).join(", ")}`,
      );
      out.push("");
    }
  }
  const summary = report.aborted
    ? "interrupted: not every check ran (everything created was removed)"
    : report.ok
      ? `all ${reachable.length} reachable runtimes passed`
      : reachable.length === 0
        ? "no runtime reachable"
        : `${report.backends.filter((b) => !b.ok).length} of ${report.backends.length} backends failed`;
  out.push(summary);
  return `${out.join("\n")}\n`;
}
