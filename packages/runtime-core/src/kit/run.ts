// The one shape of Runtime.run() on every backend: ensure the image, create, start and collect the
// output until the container exits, remove; and on any failure or abort, remove what was created and
// reject (with an AbortedError when the caller aborted), so abort and cleanup behave the same everywhere.
import { AbortedError } from "../errors.js";
import type { RunOptions, RunResult } from "../runtime.js";
import type { AdapterErrors } from "./errors.js";
import { OutputCollector } from "./output.js";

/** The backend's part of run(); see {@link runContainer}. */
export interface RunSteps {
  /** Pulls the image when it is missing (not called with `pull: false`). */
  ensureImage(): Promise<void>;
  /** Creates the container; its id. Leaves nothing behind when it throws. */
  create(): Promise<string>;
  /** Starts the container and pushes its output into `output` until it has exited; its exit code. */
  execute(id: string, output: OutputCollector): Promise<number>;
  /** Removes the exited container (not called with `remove: false`). */
  remove(id: string): Promise<void>;
  /** Removes what the run created after a failure or an abort, forcibly; never throws. */
  discard(id: string): Promise<void>;
}

/** Runs `steps` as Runtime.run() does on every backend. */
export async function runContainer(
  errors: AdapterErrors,
  options: RunOptions,
  steps: RunSteps,
): Promise<RunResult> {
  const signal = options.signal;
  if (options.pull !== false) await steps.ensureImage();
  errors.throwIfAborted("run", signal);
  const id = await steps.create();
  try {
    errors.throwIfAborted("run", signal);
    const output = new OutputCollector(options.onOutput);
    const exitCode = await steps.execute(id, output);
    errors.throwIfAborted("run", signal);
    if (options.remove !== false) await steps.remove(id);
    return { id, exitCode, ...output.result() };
  } catch (err) {
    await steps.discard(id).catch(() => {});
    if (signal?.aborted && !(err instanceof AbortedError)) throw errors.aborted("run", signal, err);
    throw err;
  }
}
