// Exec into a running container: feed it stdin, collect stdout and stderr, get the exit code.
import { DockerClient, execRun, pull } from "@berth/docker-client";

const image = process.env.IMAGE ?? process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const docker = await DockerClient.fromEnv();
try {
  await pull(docker, image);
  const { Id: id } = await docker.containers.create({
    body: { Image: image, Cmd: ["sleep", "300"], Labels: { "berth.example": "exec" } },
  });
  try {
    await docker.containers.start({ id });
    const result = await execRun(docker, id, ["sh", "-c", "tr a-z A-Z; echo to-stderr >&2; exit 3"], {
      stdin: "hello from stdin\n",
      timeout: 30_000,
    });
    console.log(`stdout: ${result.stdout.toString().trim()}`);
    console.log(`stderr: ${result.stderr.toString().trim()}`);
    console.log(`exit code: ${result.exitCode}`);
  } finally {
    await docker.containers.remove({ id, force: true });
  }
} finally {
  await docker.close();
}
