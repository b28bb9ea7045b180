import { describe, expect, it } from "vitest";
import { grpcTarget } from "../src/index.js";

describe("grpcTarget", () => {
  it("normalizes the address forms containerd and CRI document", () => {
    expect(grpcTarget("/run/containerd/containerd.sock")).toBe("unix:///run/containerd/containerd.sock");
    expect(grpcTarget("unix:///var/run/crio/crio.sock")).toBe("unix:///var/run/crio/crio.sock");
    expect(grpcTarget("unix:/tmp/x.sock")).toBe("unix:///tmp/x.sock");
    expect(grpcTarget("tcp://127.0.0.1:1234")).toBe("127.0.0.1:1234");
    expect(grpcTarget("localhost:1234")).toBe("localhost:1234");
  });
});
