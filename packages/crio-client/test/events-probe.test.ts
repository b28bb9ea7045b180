// Whether a CRI runtime has container events: containerd by its version, without a timed probe (a busy
// containerd 1.6 could take longer than the probe to refuse, and was then taken to have them).
import { describe, expect, it } from "vitest";
import { containerdHasEvents } from "../src/runtime.js";

describe("containerdHasEvents", () => {
  it("decides containerd by its version: 1.7 and later have GetContainerEvents", () => {
    expect(containerdHasEvents("containerd", "1.6.20~ds1")).toBe(false);
    expect(containerdHasEvents("containerd", "v1.6.38")).toBe(false);
    expect(containerdHasEvents("containerd", "v1.7.0")).toBe(true);
    expect(containerdHasEvents("containerd", "2.1.9+unknown")).toBe(true);
    expect(containerdHasEvents("containerd", "v10.0.0")).toBe(true);
  });

  it("leaves other runtimes and unreadable versions to the probe", () => {
    expect(containerdHasEvents("cri-o", "1.30.0")).toBeUndefined();
    expect(containerdHasEvents("containerd", "main")).toBeUndefined();
    expect(containerdHasEvents("containerd", "")).toBeUndefined();
  });
});
