// What a run or exec wrote, collected per stream while each entry also goes to the caller's onOutput.
import type { LogEntry } from "../runtime.js";

/** Collects stdout and stderr; see {@link OutputCollector.push}. */
export class OutputCollector {
  readonly #stdout: Uint8Array[] = [];
  readonly #stderr: Uint8Array[] = [];
  readonly #onOutput: ((entry: LogEntry) => void) | undefined;

  /** @param onOutput - Called with each entry as it arrives (the caller's `onOutput`). */
  constructor(onOutput?: (entry: LogEntry) => void) {
    this.#onOutput = onOutput;
  }

  /** Keeps one entry and hands it to `onOutput`. */
  push(entry: LogEntry): void {
    (entry.stream === "stderr" ? this.#stderr : this.#stdout).push(entry.data);
    this.#onOutput?.(entry);
  }

  /** Pushes every stdout and stderr entry of `entries` (others, such as stdin echoes, are skipped). */
  async drain(entries: AsyncIterable<{ stream: string; data: Uint8Array }>): Promise<void> {
    for await (const e of entries) {
      if (e.stream === "stdout" || e.stream === "stderr") this.push(e as LogEntry);
    }
  }

  /** Everything collected so far, one buffer per stream. */
  result(): { stdout: Buffer; stderr: Buffer } {
    return { stdout: Buffer.concat(this.#stdout), stderr: Buffer.concat(this.#stderr) };
  }
}
