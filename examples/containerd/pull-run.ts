// Pull an image into containerd with progress, then run a container and print its output.
//   CONTAINERD_ADDRESS=/run/containerd/containerd.sock tsx containerd/pull-run.ts [image]
import { ContainerdClient, pullProgress, run, withProcessArgs } from "@berth/containerd-client";

const image = process.argv[2] ?? process.env.BERTH_TEST_IMAGE ?? "docker.io/library/busybox:latest";
const client = ContainerdClient.fromEnv(process.env, {
  namespace: process.env.BERTH_EXAMPLE_NAMESPACE ?? "berth-examples",
});
try {
  for await (const e of pullProgress(client, image)) {
    if (e.type === "blob-done") console.log(`${e.kind} ${e.digest.slice(0, 19)} ${e.size} bytes`);
    if (e.type === "layer-unpacked") console.log(`unpacked ${e.chainId.slice(0, 19)}`);
    if (e.type === "done") console.log(`pulled ${e.image.name} as ${e.image.target.digest}`);
  }
  const result = await run(client, image, {
    spec: [withProcessArgs("sh", "-c", "echo hello from $(hostname); echo to-stderr >&2")],
    ...(process.env.BERTH_RUNC_ROOT ? { runtime: { root: process.env.BERTH_RUNC_ROOT } } : {}),
  });
  process.stdout.write(`[stdout] ${result.stdout}`);
  process.stdout.write(`[stderr] ${result.stderr}`);
  console.log(`exit code ${result.exitCode}`);
} finally {
  client.close();
}
