// Containers: a container record with a fresh snapshot and an OCI spec, and its task. With task.ts, the
// only code that calls containerd's containers and tasks services.
import { randomUUID } from "node:crypto";
import type { GrpcCallOptions } from "@berth/grpc";
import { NotFoundError } from "@berth/runtime-core";
import type { ContainerdClient } from "./client.js";
import {
  ignoreNotFound,
  isNotFound,
  parseSpec,
  RUNC_V2,
  type RuntimeOptions,
  readRootfsFiles,
  runtimeAny,
  specAny,
} from "./container-record.js";
import type { ProcessIoOptions } from "./fifo.js";
import type { Container as ContainerRecord } from "./generated/github.com/containerd/containerd/api/services/containers/v1/containers.js";
import type { Any } from "./generated/google/protobuf/any.js";
import { DEFAULT_SNAPSHOTTER, getImage, type ImageInfo } from "./image.js";
import { buildSpec, type Spec, type SpecContext, type SpecOpt, withImageConfig } from "./oci/spec.js";
import { GC_EXPIRE_LABEL } from "./pull.js";
import type { Platform } from "./registry/platform.js";
import { Task } from "./task.js";
import { fifoIo, type IoCreator } from "./task-io.js";

/** Options of createContainer(). */
export interface CreateContainerOptions {
  /** Options applied after the image config, in order. */
  spec?: SpecOpt[];
  /** The OCI runtime (shim, binary, root). */
  runtime?: RuntimeOptions;
  /** The snapshotter the rootfs is prepared with (default "overlayfs"). */
  snapshotter?: string;
  /** Labels of the container record. */
  labels?: Record<string, string>;
  /** Extensions of the container record: data of the caller's own, kept with the container. */
  extensions?: Record<string, Any>;
  /** The image platform to use (default: this host's). */
  platform?: Platform;
  /** Cancels the creation: an AbortedError once the signal fires. */
  signal?: AbortSignal;
}

/** A Container with the record containerd answered (as load(), find() and list() give them). */
export type LoadedContainer = Container & {
  /** The daemon's record of the container, as load() got it. */
  readonly record: ContainerRecord;
};

/** A container record with its rootfs snapshot, as createContainer() made it or load() found it. */
export class Container {
  #spec: Spec | undefined;

  constructor(
    /** The client it was made with. */
    readonly client: ContainerdClient,
    /** The container's id. */
    readonly id: string,
    /** The snapshotter of its rootfs. */
    readonly snapshotter: string,
    /** The key of its rootfs snapshot. */
    readonly snapshotKey: string,
    /** Its OCI runtime spec (read from `record` when not given). */
    spec?: Spec,
    /** The record as containerd answered it (labels, extensions, times), when loaded. */
    readonly record?: ContainerRecord,
  ) {
    this.#spec = spec;
  }

  /** Its OCI runtime spec; a record's is checked when first asked for (a ProtocolError if malformed). */
  get spec(): Spec {
    this.#spec ??= parseSpec(this.record?.spec);
    return this.#spec;
  }

  /** The container `id` as recorded (NotFoundError when there is none). */
  static async load(
    client: ContainerdClient,
    id: string,
    options: GrpcCallOptions = {},
  ): Promise<LoadedContainer> {
    const { container } = await client.containers.get({ id }, options);
    if (!container) {
      throw new NotFoundError(`container ${id} not found`, {
        operation: "Containers.Get",
        backend: "containerd",
      });
    }
    return Container.of(client, container);
  }

  /** The container `id`, or undefined when there is none. */
  static find(
    client: ContainerdClient,
    id: string,
    options: GrpcCallOptions = {},
  ): Promise<LoadedContainer | undefined> {
    return Container.load(client, id, options).catch(ignoreNotFound);
  }

  /** The containers whose records match `filters` (containerd's filter syntax). */
  static async list(
    client: ContainerdClient,
    filters: string[],
    options: GrpcCallOptions = {},
  ): Promise<LoadedContainer[]> {
    const { containers } = await client.containers.list({ filters }, options);
    return containers.map((c) => Container.of(client, c));
  }

  /** The container a record describes. */
  static of(client: ContainerdClient, record: ContainerRecord): LoadedContainer {
    return new Container(
      client,
      record.id,
      record.snapshotter,
      record.snapshotKey,
      undefined,
      record,
    ) as LoadedContainer;
  }

  /** Create the task (the init process, not started), its stdio made by `io` (default: FIFOs). Not cut
   *  short by a signal: containerd would go on creating the task (and its shim) after a cancelled call,
   *  and a cleanup would miss it. */
  async newTask(io: IoCreator | ProcessIoOptions = {}): Promise<Task> {
    const made = await (typeof io === "function" ? io : fifoIo(io))();
    try {
      const record = this.record ?? (await Container.load(this.client, this.id)).record;
      const { mounts } = await this.client.snapshots.mounts({
        snapshotter: this.snapshotter,
        key: this.snapshotKey,
      });
      const { pid } = await this.client.tasks.create({
        containerId: this.id,
        rootfs: mounts,
        stdin: made.stdinPath,
        stdout: made.stdoutPath,
        stderr: made.stderrPath,
        terminal: made.terminal,
        ...(record?.runtime?.options ? { options: record.runtime.options } : {}),
      });
      return new Task(this.client, this.id, made, pid);
    } catch (err) {
      await made.cleanup();
      throw err;
    }
  }

  /** Its task as containerd has it now, or undefined when it has none. */
  async task(options: GrpcCallOptions = {}): Promise<Task | undefined> {
    try {
      const { process } = await this.client.tasks.get({ containerId: this.id }, options);
      return Task.of(this.client, this.id, process);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Set one extension of the record (the others stay). */
  async setExtension(name: string, value: Any): Promise<void> {
    await this.client.containers.update({
      container: { id: this.id, extensions: { [name]: value } },
      updateMask: [`extensions.${name}`],
    });
  }

  /** Delete the task if any (killing it), the container record and its snapshot. */
  async delete(): Promise<void> {
    await Task.of(this.client, this.id).destroy();
    await this.client.containers.delete({ id: this.id }).catch(ignoreNotFound);
    await this.client.snapshots
      .remove({ snapshotter: this.snapshotter, key: this.snapshotKey })
      .catch(ignoreNotFound);
  }
}

/**
 * Create a container from a pulled image: a fresh snapshot on the image's top layer, the default spec
 * with the image config (user names resolved in the image's /etc/passwd) and `options.spec` applied.
 */
export async function createContainer(
  client: ContainerdClient,
  image: string | ImageInfo,
  id: string,
  options: CreateContainerOptions = {},
): Promise<LoadedContainer> {
  const snapshotter = options.snapshotter ?? DEFAULT_SNAPSHOTTER;
  const info =
    typeof image === "string"
      ? await getImage(client, image, options.platform ? { platform: options.platform } : {})
      : image;
  const parent = info.chainIds[info.chainIds.length - 1] ?? "";
  // Until the container record references the snapshot, only a lease keeps GC off it.
  const leaseId = `berth-create-${randomUUID()}`;
  const expire = new Date(Date.now() + 600_000).toISOString();
  await client.leases.create({ id: leaseId, labels: { [GC_EXPIRE_LABEL]: expire } });
  const { mounts } = await client.withLease(leaseId).snapshots.prepare({ snapshotter, key: id, parent });
  try {
    const [passwd, group] = await readRootfsFiles(mounts, ["etc/passwd", "etc/group"]);
    const ctx: SpecContext = { id, namespace: client.namespace, passwd, group };
    const spec = buildSpec(ctx, withImageConfig(info.config), ...(options.spec ?? []));
    const runtime = options.runtime ?? {};
    const { container } = await client.containers.create({
      container: {
        id,
        image: info.name,
        labels: options.labels ?? {},
        runtime: { name: runtime.name ?? RUNC_V2, options: runtimeAny(runtime) },
        spec: specAny(spec),
        snapshotter,
        snapshotKey: id,
        extensions: options.extensions ?? {},
      },
    });
    if (!container)
      throw new NotFoundError(`container ${id}: not in containerd's answer`, {
        operation: "Containers.Create",
        backend: "containerd",
      });
    return new Container(client, id, snapshotter, id, spec, container) as LoadedContainer;
  } catch (err) {
    await client.snapshots.remove({ snapshotter, key: id }).catch(() => {});
    throw err;
  } finally {
    await client.leases.delete({ id: leaseId }).catch(() => {});
  }
}
