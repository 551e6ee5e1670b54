/**
 * Images for the real node without a registry: a one-layer OCI image archive written from host files, and
 * the import of any image archive (OCI or docker-archive, as `buildah push oci-archive:` or `docker save`
 * writes them) into the node's containerd, where kubelet finds it by name (pods need
 * `imagePullPolicy: Never` or `IfNotPresent`).
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runProgram } from './runProgram.js';

/** The containerd that an image goes into: its ctr program and its socket. */
export interface ContainerdEndpoint {
  ctr: string;
  address: string;
}

/** The containerd namespace that the CRI plugin, hence kubelet, sees. */
const criNamespace = 'k8s.io';

/**
 * Imports an image archive into the node's containerd, unpacked for the default snapshotter so that a
 * pod can start from it at once, under the name the archive carries: an OCI archive's
 * `io.containerd.image.name` annotation (writeOciArchive sets it), or a docker archive's RepoTags. An OCI
 * archive with only `org.opencontainers.image.ref.name` (what `buildah push … oci-archive:` writes) keeps
 * that name too when it is a full reference, through ctr's client-side import (`--local`); containerd's
 * transfer service would name it `import-<date>:<ref>`. The CRI resolves a short name such as
 * `codemate-session:dev` to `docker.io/library/codemate-session:dev`.
 */
export async function importImage(archivePath: string, containerd: ContainerdEndpoint): Promise<void> {
  await runProgram(containerd.ctr, [
    '--address',
    containerd.address,
    '--namespace',
    criNamespace,
    'images',
    'import',
    '--local',
    archivePath,
  ]);
}

export interface ImageFile {
  /** The file on the host. */
  source: string;
  /** Its path in the image, e.g. `bin/busybox`. */
  target: string;
  mode: number;
}

export interface ImageSpec {
  /** The full reference, e.g. `localhost/codemate/pause:3.10.2`. */
  name: string;
  files: ImageFile[];
  entrypoint: string[];
}

/**
 * Writes `spec` as an OCI image archive (oci-layout, index.json, blobs) with one uncompressed layer, for
 * linux/amd64. The layer tar is made with fixed owners and times, so the same files give the same digest.
 */
export async function writeOciArchive(spec: ImageSpec, out: string): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'codemate-oci-'));
  try {
    const rootfs = path.join(work, 'rootfs');
    for (const file of spec.files) {
      const target = path.join(rootfs, file.target);
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(file.source, target);
      await chmod(target, file.mode);
    }
    const layout = path.join(work, 'layout');
    const blobs = path.join(layout, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    const layerTar = path.join(work, 'layer.tar');
    await runProgram('tar', [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mtime=@0',
      '-cf',
      layerTar,
      '-C',
      rootfs,
      '.',
    ]);
    const addBlob = async (bytes: Buffer, mediaType: string) => {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      await writeFile(path.join(blobs, digest.slice('sha256:'.length)), bytes);
      return { mediaType, digest, size: bytes.length };
    };
    const layer = await addBlob(await readFile(layerTar), 'application/vnd.oci.image.layer.v1.tar');
    const config = await addBlob(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: { Entrypoint: spec.entrypoint, Env: ['PATH=/bin'] },
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
        }),
      ),
      'application/vnd.oci.image.config.v1+json',
    );
    const manifest = await addBlob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config,
          layers: [layer],
        }),
      ),
      'application/vnd.oci.image.manifest.v1+json',
    );
    const tag = spec.name.slice(spec.name.lastIndexOf(':') + 1);
    await writeFile(
      path.join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            ...manifest,
            annotations: {
              'io.containerd.image.name': spec.name,
              'org.opencontainers.image.ref.name': tag,
            },
          },
        ],
      }),
    );
    await writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await mkdir(path.dirname(out), { recursive: true });
    await runProgram('tar', ['--owner=0', '--group=0', '--numeric-owner', '-cf', out, '-C', layout, '.']);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
