// Run a container and stream its logs as they are written, stdout and stderr apart.
//   DOCKER_HOST=unix:///var/run/docker.sock IMAGE=busybox:latest npx tsx docker/run-logs.ts
import { DockerClient, pull } from "@berth/docker-client";

const image = process.env.IMAGE ?? process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const docker = await DockerClient.fromEnv();
try {
  await pull(docker, image);
  const { Id: id } = await docker.containers.create({
    body: {
      Image: image,
      Cmd: ["sh", "-c", "for i in 1 2 3; do echo line $i; echo warning $i >&2; sleep 0.2; done"],
      Labels: { "berth.example": "run-logs" },
    },
  });
  try {
    await docker.containers.start({ id });
    const logs = await docker.containers.logs({ id, follow: true, stdout: true, stderr: true });
    for await (const frame of logs) {
      const text = Buffer.from(frame.data).toString("utf8");
      process.stdout.write(frame.stream === "stderr" ? `[stderr] ${text}` : `[stdout] ${text}`);
    }
    const { StatusCode } = await docker.containers.wait({ id });
    console.log(`exit code ${StatusCode}`);
  } finally {
    await docker.containers.remove({ id, force: true });
  }
} finally {
  await docker.close();
}
