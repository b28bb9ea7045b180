// Start a long-running container and run commands in it: one with stdin (where the backend can feed
// stdin), one that fails, showing exit codes and separate stdout/stderr.
import { connect } from "berth-sdk";

const image = process.env.BERTH_EXAMPLE_IMAGE ?? process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const rt = await connect();
try {
  await rt.pull(image);
  const id = await rt.create({ image, command: ["sleep", "600"], labels: { "berth.example": "exec" } });
  try {
    await rt.start(id);
    const text = (b: Uint8Array) => Buffer.from(b).toString().trim();
    if (rt.capabilities.execStdin) {
      const up = await rt.exec(id, ["tr", "a-z", "A-Z"], { stdin: "shout this\n" });
      console.log(`tr: exit ${up.exitCode}, stdout "${text(up.stdout)}"`);
    } else {
      console.log(`${rt.backend} cannot feed stdin to exec; running without`);
    }
    const res = await rt.exec(id, ["sh", "-c", "echo in $(pwd) as $(id -u); echo oops >&2; exit 3"]);
    console.log(`sh: exit ${res.exitCode}, stdout "${text(res.stdout)}", stderr "${text(res.stderr)}"`);
  } finally {
    await rt.remove(id, { force: true });
  }
} finally {
  await rt.close();
}
