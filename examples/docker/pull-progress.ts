// Pull an image with a progress bar built from the daemon's per-layer progress messages.
import { DockerClient, pullProgress } from "@berth/docker-client";

const image = process.argv[2] ?? process.env.IMAGE ?? process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const docker = await DockerClient.fromEnv();
const layers = new Map<string, { current: number; total: number }>();
const bar = () => {
  let current = 0;
  let total = 0;
  for (const l of layers.values()) {
    current += l.current;
    total += l.total;
  }
  const ratio = total ? current / total : 0;
  const width = 30;
  const filled = Math.round(ratio * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${layers.size} layer(s)`;
};
try {
  // Remove it first so there is something to download (ignore "not found").
  await docker.images.remove({ name: image, force: true }).catch(() => {});
  for await (const msg of pullProgress(docker, image)) {
    if (msg.id && msg.progressDetail?.total) {
      layers.set(msg.id, { current: msg.progressDetail.current ?? 0, total: msg.progressDetail.total });
    } else if (msg.id && /complete|already exists/i.test(msg.status ?? "")) {
      const l = layers.get(msg.id);
      if (l) l.current = l.total;
    }
    if (process.stdout.isTTY) process.stdout.write(`\r${bar()}`);
    else if (msg.status) console.log(`${msg.id ? `${msg.id}: ` : ""}${msg.status}`);
  }
  if (process.stdout.isTTY) process.stdout.write("\n");
  const info = await docker.images.inspect({ name: image });
  console.log(`pulled ${image} as ${info.Id}`);
} finally {
  await docker.close();
}
