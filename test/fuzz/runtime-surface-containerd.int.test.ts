// The Runtime surface fuzz (./runtime-surface.ts) on containerd and the CRI.
import { runtimeSurfaceFuzz } from "./runtime-surface.js";

runtimeSurfaceFuzz(["containerd", "cri"]);
