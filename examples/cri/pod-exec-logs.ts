// Run a pod with one container through the CRI, exec into it, and read its logs.
// Needs a CRI runtime (CONTAINER_RUNTIME_ENDPOINT, crictl.yaml or a default socket) and a directory the
// runtime can write container logs into (CRI_LOG_DIR; default a temporary directory).
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CriClient } from "@berth/crio-client";

const image = process.env.IMAGE ?? process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const run = `example-${randomBytes(4).toString("hex")}`;
const logRoot = process.env.CRI_LOG_DIR ?? process.env.BERTH_CRI_LOG_DIR;
const logDirectory = logRoot ? join(logRoot, run) : mkdtempSync(join(tmpdir(), "cri-logs-"));
mkdirSync(logDirectory, { recursive: true });

const cri = await CriClient.connect();
try {
  const v = await cri.version();
  console.log(`runtime: ${v.runtimeName} ${v.runtimeVersion} (CRI ${v.runtimeApiVersion})`);
  await cri.pullImage(image);

  const pod = await cri.runPodSandbox({
    metadata: { name: run, uid: run, namespace: "default" },
    hostname: run,
    logDirectory,
    labels: { "berth.example": "pod-exec-logs" },
  });
  try {
    const { status } = await cri.podSandboxStatus(pod);
    console.log(`pod ${pod.slice(0, 12)} ip ${status?.network?.ip || "(host network)"}`);

    const container = await cri.createContainer(pod, {
      metadata: { name: "app" },
      image: { image },
      command: ["sh", "-c", "echo hello from the container; echo a warning >&2; exec sleep 300"],
    });
    await cri.startContainer(container);

    // Exec with streams: feed stdin, get stdout, stderr and the exit code.
    const session = await cri.exec(container, ["sh", "-c", "read name; echo hello, $name; exit 3"], {
      stdin: true,
    });
    const result = await session.output("CRI\n");
    console.log(`exec stdout: ${result.stdout.toString().trim()}`);
    console.log(`exec exit code: ${result.exitCode}`);

    // The container's CRI log, as whole lines.
    await new Promise((r) => setTimeout(r, 500));
    for await (const line of cri.logs(container)) console.log(`log [${line.stream}] ${line.content}`);

    await cri.stopContainer(container, 0);
    await cri.removeContainer(container);
  } finally {
    await cri.stopPodSandbox(pod);
    await cri.removePodSandbox(pod);
    console.log("pod removed");
  }
} finally {
  cri.close();
  rmSync(logDirectory, { recursive: true, force: true });
}
