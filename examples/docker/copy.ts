// Copy a file into a container and back out, as tar streams.
import { DockerClient, decodePathStat, packTar, pull, unpackTar } from "@berth/docker-client";

const image = process.env.IMAGE ?? process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const docker = await DockerClient.fromEnv();
try {
  await pull(docker, image);
  const { Id: id } = await docker.containers.create({
    body: { Image: image, Cmd: ["sleep", "300"], Labels: { "berth.example": "copy" } },
  });
  try {
    await docker.containers.start({ id });
    await docker.containers.putArchive({
      id,
      path: "/tmp",
      body: packTar([{ name: "greeting.txt", data: "hello, container\n", mode: 0o640 }]),
    });
    console.log("copied greeting.txt into /tmp");
    const archive = await docker.containers.getArchive({ id, path: "/tmp/greeting.txt" });
    const stat = decodePathStat(archive.headers);
    console.log(`stat: ${stat?.name} ${stat?.size} bytes, mode ${((stat?.mode ?? 0) & 0o777).toString(8)}`);
    for await (const entry of unpackTar(archive)) {
      console.log(`copied out ${entry.name}: ${Buffer.from(entry.data).toString("utf8").trim()}`);
    }
  } finally {
    await docker.containers.remove({ id, force: true });
  }
} finally {
  await docker.close();
}
