import {
  ConflictError,
  DaemonError,
  DigestMismatchError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
  ValidationError,
} from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { isNoSuchUser } from "../src/errors.js";
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

  it("maps containerd's state conflicts to ConflictError and a user missing from the image to NotFoundError", () => {
    const create = (text: string) =>
      new DaemonError(`RuntimeService.CreateContainer: ${text}`, { status: "UNKNOWN", daemonMessage: text });
    expect(
      refineCriError(
        create(
          'failed to reserve container name "c1_p_berth_u_0": name "c1_p_berth_u_0" is reserved for "f20d"',
        ),
      ),
    ).toBeInstanceOf(ConflictError);
    expect(
      refineCriError(
        create('failed to set starting state for container "f20d": container is in CONTAINER_RUNNING state'),
      ),
    ).toBeInstanceOf(ConflictError);
    expect(
      refineCriError(
        create("failed to create containerd container: mount callback failed on /x: no users found"),
      ),
    ).toBeInstanceOf(NotFoundError);
  });

  it("maps a layer that failed its digest check to DigestMismatchError, whatever the status", () => {
    const expected = `sha256:${"1".repeat(64)}`;
    const actual = `sha256:${"2".repeat(64)}`;
    // containerd 1.6's CRI, for a layer served with one byte flipped
    const text = `failed to pull and unpack image "127.0.0.1:5002/x:v1": failed commit on ref "layer-${expected}": unexpected commit digest ${actual}, expected ${expected}: failed precondition`;
    const precondition = new ConflictError(`ImageService.PullImage: ${text}`, {
      status: "FAILED_PRECONDITION",
      daemonMessage: text,
      operation: "ImageService.PullImage",
      backend: "cri",
    });
    const err = refineCriError(precondition);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(err).toMatchObject({ expected, actual, status: "FAILED_PRECONDITION", backend: "cri" });
    // CRI-O (containers/image), as UNKNOWN
    expect(
      refineCriError(
        unknown(
          `writing blob: happened during read: Digest did not match, expected ${expected}, got ${actual}`,
        ),
      ),
    ).toMatchObject({ expected, actual });
  });

  it("isNoSuchUser reads containerd's texts for a user or group missing from the image", () => {
    expect(isNoSuchUser("mount callback failed on /x: no users found")).toBe(true);
    expect(isNoSuchUser("mount callback failed on /x: no groups found")).toBe(true);
    expect(isNoSuchUser('unable to find user "nobody2": no matching entries in passwd file')).toBe(true);
    expect(isNoSuchUser("no such file or directory")).toBe(false);
  });
});
