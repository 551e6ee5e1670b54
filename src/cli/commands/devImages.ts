/**
 * `codemate dev build --images`: the project's images, built with buildah on locally made bases
 * (src/sandbox/images.ts). A module of its own, so that it loads none of the sandbox's (the Kubernetes
 * client alone is a second of start-up), and a cache hit answers at once.
 */
import { devConfig, type DevConfig } from '../../config/index.js';
import { buildImages } from '../../sandbox/images.js';
import { locate, table, type Output } from '../output.js';
import type { Verb } from '../program.js';

export const buildImagesVerb: Verb = async ({ flags }, deps) =>
  runDevBuildImages(devConfig(await deps.env(), flags), deps.out);

/** The base images and the project's two images: their names, IDs and archives, in build order. */
export async function runDevBuildImages(config: DevConfig, out: Output): Promise<void> {
  const images = await locate(
    out,
    'images',
    (onProgress) => buildImages({ cacheDir: config.cacheDir, onProgress }),
    (built) => `${Object.keys(built).length} images in ${config.cacheDir}/images`,
  );
  const rows = Object.values(images).map((image) => [image.name, image.id.slice(7, 19), image.archive]);
  out.data(table([['IMAGE', 'ID', 'ARCHIVE'], ...rows]));
}
