// X-Registry-Auth goes only with an image of the registry it names. The engine hands the header to
// whatever registry the operation's image is on (pull, push, plugin pull/upgrade; for a service, every node
// that pulls its image), so credentials whose serveraddress names another registry are refused before the
// request is sent. Without a serveraddress they are the image's registry's, as the engine takes them.
// Not checked here: ImageBuild's X-Registry-Config maps each registry to its own credentials, and the
// engine uses an entry only for the registry it is keyed by; system.auth sends credentials in its body to
// the engine, which logs in to the serveraddress they name. A header a caller adds by hand
// (RequestOptions.headers) is the caller's.
import { credentialsForImage, ValidationError } from "@berth/runtime-core";
import type { RegistryAuth } from "./generated/operations.js";
import type { OperationSpec } from "./operation.js";

type Params = Record<string, unknown>;

interface WithImage {
  TaskTemplate?: { ContainerSpec?: { Image?: unknown } };
}

/** Where each operation that sends X-Registry-Auth names its image. */
const IMAGE_OF: Readonly<Record<string, (p: Params) => unknown>> = {
  // fromSrc imports a tarball: no registry is contacted.
  ImageCreate: (p) => (p.fromSrc === undefined ? p.fromImage : undefined),
  ImagePush: (p) => p.name,
  PluginPull: (p) => p.remote,
  PluginUpgrade: (p) => p.remote,
  ServiceCreate: (p) => (p.body as WithImage | undefined)?.TaskTemplate?.ContainerSpec?.Image,
  ServiceUpdate: (p) => (p.body as WithImage | undefined)?.TaskTemplate?.ContainerSpec?.Image,
};

/** The credentials a raw `registryAuth` value carries: an object, or its JSON text. */
function authOf(value: unknown, operation: string): { serveraddress?: unknown } {
  if (typeof value !== "string") return value as RegistryAuth;
  try {
    return JSON.parse(value) as { serveraddress?: unknown };
  } catch {
    throw new ValidationError(`${operation}: registryAuth is neither an object nor JSON`, { operation });
  }
}

/**
 * Throw UnauthorizedError when an operation would send X-Registry-Auth naming one registry along with an
 * image on another. Operations without the header pass.
 */
export function checkRegistryAuth(
  spec: OperationSpec,
  params: Params,
  operation: string,
  backend: string,
): void {
  const imageOf = IMAGE_OF[spec.id];
  const value = params.registryAuth;
  if (!imageOf || value === undefined || value === null) return;
  const image = imageOf(params);
  if (image === undefined || image === null || image === "") return;
  if (typeof image !== "string") {
    throw new ValidationError(`${operation}: the image must be a string`, { operation, backend });
  }
  const { serveraddress } = authOf(value, operation);
  credentialsForImage(image, { serverAddress: serveraddress as string | undefined }, { operation, backend });
}
