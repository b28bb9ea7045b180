// Everything a job started carries its label; one call finds and removes it all, running or not.
import { randomBytes } from "node:crypto";
import { connect } from "berth-sdk";

const image = process.env.BERTH_EXAMPLE_IMAGE ?? process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const job = { "berth.example.job": randomBytes(4).toString("hex") };
const rt = await connect();
try {
  await rt.pull(image);
  // A job that leaves things behind: two running, one exited, one never started.
  for (let i = 0; i < 2; i++) {
    await rt.start(await rt.create({ image, command: ["sleep", "600"], labels: job }));
  }
  const done = await rt.create({ image, command: ["true"], labels: job });
  await rt.start(done);
  await rt.wait(done);
  await rt.create({ image, command: ["true"], labels: job });

  const left = await rt.list({ labels: job, all: true });
  console.log(
    `found ${left.length} containers labelled ${JSON.stringify(job)}: ${left
      .map((c) => c.state)
      .sort()
      .join(", ")}`,
  );
  await Promise.all(left.map((c) => rt.remove(c.id, { force: true })));
  console.log(`removed ${left.length}; left now: ${(await rt.list({ labels: job, all: true })).length}`);
} finally {
  await rt.close();
}
