import {
  DaemonError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
  ValidationError,
} from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { refineCriError } from "../src/index.js";

const unknown = (text: string) =>
  new DaemonError(`PullImage: ${text}`, { status: "UNKNOWN", daemonMessage: text, operation: "PullImage" });

describe("refineCriError", () => {
  it("maps containerd's UNKNOWN texts to typed errors, keeping the daemon's message", () => {
    const e401 = refineCriError(
      unknown(
        'failed to pull and unpack image "x": failed to resolve reference "x": unexpected status: 401 Unauthorized',
      ),
    );
    expect(e401).toBeInstanceOf(UnauthorizedError);
    expect((e401 as UnauthorizedError).daemonMessage).toContain("401 Unauthorized");
    expect(refineCriError(unknown('failed to resolve reference "x": x: not found'))).toBeInstanceOf(
      NotFoundError,
    );
    expect(refineCriError(unknown("failed to exec in container: timeout 1s exceeded"))).toBeInstanceOf(
      TimeoutError,
    );
    const other = unknown("disk full");
    expect(refineCriError(other)).toBe(other);
    const specific = new ValidationError("bad");
    expect(refineCriError(specific)).toBe(specific);
  });
});
