// The Runtime surface fuzz (./runtime-surface.ts) on Docker and Podman.
import { runtimeSurfaceFuzz } from "./runtime-surface.js";

runtimeSurfaceFuzz(["docker", "podman"]);
