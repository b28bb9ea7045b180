// Pull an image with a progress bar (one line per layer on a terminal, a summary otherwise).
import { connect, type PullProgress } from "berth-sdk";

const image =
  process.argv[2] ?? process.env.BERTH_EXAMPLE_IMAGE ?? process.env.BERTH_TEST_IMAGE ?? "busybox:latest";
const rt = await connect();
const tty = process.stdout.isTTY;
const layers = new Map<string, PullProgress>();

function bar(p: PullProgress, width = 30): string {
  if (!p.total) return p.status;
  const done = Math.min(1, (p.current ?? 0) / p.total);
  const fill = Math.round(done * width);
  return `[${"#".repeat(fill)}${".".repeat(width - fill)}] ${(done * 100).toFixed(0).padStart(3)}% ${p.status}`;
}

let drawn = 0;
function draw(): void {
  if (!tty) return;
  if (drawn) process.stdout.write(`\x1b[${drawn}A`);
  for (const [id, p] of layers) process.stdout.write(`\x1b[2K${id.slice(0, 19).padEnd(20)}${bar(p)}\n`);
  drawn = layers.size;
}

try {
  const t0 = performance.now();
  await rt.pull(image, {
    onProgress: (p) => {
      if (!p.id) return;
      layers.set(p.id, p);
      draw();
    },
  });
  const bytes = [...layers.values()].reduce((n, p) => n + (p.total ?? 0), 0);
  console.log(
    `pulled ${image} with ${rt.backend}: ${layers.size} items, ${(bytes / 1048576).toFixed(1)} MiB reported, ${Math.round(performance.now() - t0)} ms`,
  );
} finally {
  await rt.close();
}
