// The Runtime methods every adapter inherits from the kit, written once on top of the adapter's own
// inspect(), logs() and exec(): an adapter class extends AdapterBase and implements the rest of Runtime.

import type { EndpointOptions } from "../call-args.js";
import type { Capabilities, Endpoint, ReadinessProbe, Runtime, WaitForOptions } from "../runtime.js";
import type { AdapterErrors } from "./errors.js";
import { endpointFor, waitForReady } from "./ready.js";

/** The part of a berth adapter written once in the kit; see {@link AdapterBase}. */
export abstract class AdapterBase {
  readonly #errors: AdapterErrors;

  /** @param errors - The adapter's error factory (its backend stamped on every error). */
  protected constructor(errors: AdapterErrors) {
    this.#errors = errors;
  }

  /** The subclass, which implements the rest of Runtime. */
  get #runtime(): Runtime {
    return this as unknown as Runtime;
  }

  /** See Runtime.endpoint(). */
  endpoint(id: string, containerPort: number, options?: EndpointOptions): Promise<Endpoint> {
    return endpointFor(this.#runtime, this.#errors, id, containerPort, options);
  }

  /** See Runtime.waitFor(). */
  waitFor(id: string, probe: ReadinessProbe, options?: WaitForOptions): Promise<void> {
    return waitForReady(this.#runtime, this.#errors, id, probe, options);
  }
}

/** Every capability, all true (a Record over Capabilities' keys, so one added there must be added here). */
const ALL_CAPABILITIES: Record<keyof Capabilities, true> = {
  ports: true,
  tmpfs: true,
  cpuLimit: true,
  memoryLimit: true,
  hostNetwork: true,
  bridgeNetwork: true,
  signals: true,
  stats: true,
  events: true,
  execStdin: true,
  tty: true,
  pause: true,
};

/** Every capability a Runtime declares, in the order the README's table lists them. */
export const CAPABILITIES = Object.keys(ALL_CAPABILITIES) as readonly (keyof Capabilities)[];

/** Every capability true but those `lacking`: how an adapter declares what its backend cannot do. */
export function capabilitiesWithout(...lacking: (keyof Capabilities)[]): Capabilities {
  const caps: Capabilities = { ...ALL_CAPABILITIES };
  for (const c of lacking) caps[c] = false;
  return caps;
}
