// Start a long-running container, exec processes in it (one fed through stdin), then stop it.
//   CONTAINERD_ADDRESS=/run/containerd/containerd.sock tsx containerd/exec.ts [image]
import { ContainerdClient, createContainer, pull, withProcessArgs } from "@berth/containerd-client";

const image = process.argv[2] ?? process.env.BERTH_TEST_IMAGE ?? "docker.io/library/busybox:latest";
const client = ContainerdClient.fromEnv(process.env, {
  namespace: process.env.BERTH_EXAMPLE_NAMESPACE ?? "berth-examples",
});
const id = `berth-exec-example-${process.pid}`;
try {
  await pull(client, image);
  const container = await createContainer(client, image, id, {
    spec: [withProcessArgs("sleep", "300")],
    ...(process.env.BERTH_RUNC_ROOT ? { runtime: { root: process.env.BERTH_RUNC_ROOT } } : {}),
  });
  try {
    const task = await container.newTask();
    await task.start();

    const proc = await task.exec(["sh", "-c", "tr a-z A-Z; echo to-stderr >&2; exit 3"], { stdin: true });
    const output = proc.output();
    await proc.start();
    proc.stdin?.write("hello from stdin\n");
    await proc.closeStdin();
    const { exitCode } = await proc.wait();
    const { stdout, stderr } = await output;
    await proc.delete();
    process.stdout.write(`stdout: ${stdout}`);
    process.stdout.write(`stderr: ${stderr}`);
    console.log(`exit code: ${exitCode}`);

    await task.kill("SIGKILL");
    await task.wait();
    await task.delete();
  } finally {
    await container.delete();
  }
} finally {
  client.close();
}
