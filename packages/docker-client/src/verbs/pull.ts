// Pull: ImageCreate with the reference split the way the daemon wants it, registry credentials from the
// Docker config (or given), and progress as an async iterable whose errors are thrown, never swallowed.
import {
  credentialsForImage,
  parseImageRef,
  type RegistryCredentials,
  resolveCredentials,
} from "@berth/runtime-core";
import type { DockerClient } from "../client.js";
import type { CreateImageInfo } from "../generated/models.js";
import type { RegistryAuth } from "../generated/operations.js";

/** Options of pull() and pullProgress(). */
export interface DockerPullOptions {
  /** Credentials for the image's registry; by default they come from ~/.docker/config.json
   *  (auths, credsStore, credHelpers), as the Docker CLI finds them. `false` sends none. Credentials
   *  whose `serverAddress` names another registry are refused (UnauthorizedError) and nothing is sent;
   *  without a `serverAddress` they are for the image's registry. */
  auth?: RegistryCredentials | false;
  /** "os/arch[/variant]" */
  platform?: string;
  /** Cancels the pull: an AbortedError once the signal fires. */
  signal?: AbortSignal;
}

/** The X-Registry-Auth form of credentials: a token when there is one, else username and password. */
export function toRegistryAuth(creds: RegistryCredentials): RegistryAuth {
  if (creds.identityToken) return { identitytoken: creds.identityToken, serveraddress: creds.serverAddress };
  if (creds.registryToken) return { registrytoken: creds.registryToken, serveraddress: creds.serverAddress };
  return {
    ...(creds.username === undefined ? {} : { username: creds.username }),
    ...(creds.password === undefined ? {} : { password: creds.password }),
    serveraddress: creds.serverAddress,
  };
}

/** Pull an image, yielding the daemon's progress messages as they arrive. */
export async function* pullProgress(
  docker: DockerClient,
  image: string,
  options: DockerPullOptions = {},
): AsyncGenerator<CreateImageInfo> {
  const ref = parseImageRef(image);
  // Given credentials go only with an image of the registry they name: the engine sends X-Registry-Auth
  // to whatever registry the image is on.
  const creds =
    options.auth === false
      ? undefined
      : options.auth === undefined || options.auth === null
        ? await resolveCredentials(ref.registry, options.signal ? { signal: options.signal } : {})
        : credentialsForImage(ref, options.auth, { operation: "images.pull", backend: docker.backend });
  const stream = await docker.images.pull(
    {
      // The registry/repository the daemon should resolve, and the tag or digest apart from it.
      fromImage: ref.name,
      tag: ref.reference,
      ...(options.platform ? { platform: options.platform } : {}),
      ...(creds ? { registryAuth: toRegistryAuth(creds) } : {}),
    },
    options.signal ? { signal: options.signal } : {},
  );
  yield* stream;
}

/** Pull an image and wait for it; `onProgress` sees every progress message. */
export async function pull(
  docker: DockerClient,
  image: string,
  options: DockerPullOptions & { onProgress?: (message: CreateImageInfo) => void } = {},
): Promise<void> {
  for await (const message of pullProgress(docker, image, options)) options.onProgress?.(message);
}
