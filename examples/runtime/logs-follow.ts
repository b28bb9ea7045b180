// Follow a container's logs as it writes them, with timestamps, until it exits.
// BERTH_RUNTIME=docker|podman|containerd|cri picks the backend (default: the first that answers).
import { connect } from "berth-sdk";

const image = process.env.BERTH_EXAMPLE_IMAGE ?? process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const rt = await connect();
try {
  await rt.pull(image);
  const id = await rt.create({
    image,
    command: ["sh", "-c", "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done; echo done >&2"],
    labels: { "berth.example": "logs-follow" },
  });
  try {
    await rt.start(id);
    for await (const entry of rt.logs(id, { follow: true, timestamps: true })) {
      const time = entry.time ? entry.time.toISOString() : "-";
      process.stdout.write(`${time} ${entry.stream.padEnd(6)} ${Buffer.from(entry.data).toString()}`);
    }
    console.log(`exit code ${(await rt.wait(id)).exitCode}`);
  } finally {
    await rt.remove(id, { force: true });
  }
} finally {
  await rt.close();
}
