#!/usr/bin/env node
// The `berth-sdk` command: `berth-sdk doctor [--json] [--image <ref>] [--timeout <seconds>]`.
// Exit codes: 0 every reachable backend passed, 1 a check failed or nothing answered, 2 usage error,
// 130 interrupted (what the doctor created is removed first; a second Ctrl-C leaves at once).
import { parseArgs } from "node:util";
import {
  berthVersion,
  DEFAULT_DOCTOR_IMAGE,
  type DoctorBackend,
  type DoctorCheck,
  doctor,
} from "./doctor.js";
import { formatReport } from "./doctor-format.js";

const USAGE = `Usage: berth-sdk doctor [--json] [--image <ref>] [--timeout <seconds>]

Finds every container runtime this machine can reach (DOCKER_HOST or the Docker context,
PODMAN_HOST / CONTAINER_HOST, CONTAINERD_ADDRESS, CONTAINER_RUNTIME_ENDPOINT, then the default
sockets) and checks each: version, list, pull, run, exec, logs, events, stop, remove. Prints a
table and, for every failure, its cause and fix.

Options:
  --json               one JSON document (schemaVersion 1) instead of the table
  --image <ref>        the image to pull and run (default ${DEFAULT_DOCTOR_IMAGE});
                       a busybox-like image with sh, echo and sleep
  --timeout <seconds>  how long each check may take (default 30)
  -h, --help           this text
  -v, --version        berth-sdk's version

Exit status: 0 every reachable runtime passed, 1 a check failed or no runtime answered,
2 usage error, 130 interrupted.
`;

function usageError(message: string): never {
  process.stderr.write(`berth-sdk: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: "boolean" },
        image: { type: "string" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
    });
  }
  try {
    parsed = parse();
  } catch (err) {
    usageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [command, ...extra] = positionals;
  if (values.version && command === undefined) {
    process.stdout.write(`${berthVersion()}\n`);
    return 0;
  }
  if (command === undefined) usageError("no command given");
  if (command !== "doctor") usageError(`unknown command "${command}"`);
  if (extra.length > 0) usageError(`unexpected argument "${extra[0]}"`);
  let timeout: number | undefined;
  if (values.timeout !== undefined) {
    timeout = Number(values.timeout);
    if (!/^\s*\d+(\.\d+)?\s*$/.test(values.timeout) || !(timeout > 0)) {
      usageError(`--timeout wants a positive number of seconds, not "${values.timeout}"`);
    }
  }
  if (values.image !== undefined && values.image.trim() === "")
    usageError("--image wants an image reference");

  const controller = new AbortController();
  let interrupts = 0;
  const interrupt = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write(
      `\nberth-sdk doctor: ${signal}, removing what it created (again to quit at once)...\n`,
    );
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  process.on("SIGINT", interrupt);
  process.on("SIGTERM", interrupt);

  const progress = !values.json && process.stderr.isTTY;
  const onCheck = (b: DoctorBackend, c: DoctorCheck) => {
    if (progress) process.stderr.write(`  ${b.backend.padEnd(10)} ${c.name.padEnd(7)} ${c.status}\n`);
  };
  const report = await doctor({
    ...(values.image !== undefined ? { image: values.image } : {}),
    ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}),
    signal: controller.signal,
    onCheck,
  });
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  if (report.aborted) return 130;
  return report.ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Sockets a daemon keeps open (an event stream's) must not hold the process.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.stderr.write(`berth-sdk: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
