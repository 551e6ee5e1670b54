/**
 * Where the package's own files are, next to dist/: the manifests the sandbox applies, and what
 * /opt/codemate/bin and /opt/codemate/plugins are in the session image (the local pod runtime runs
 * sessions from them). Both the sandbox and the pod runtime read these, so they live below both.
 */
import { fileURLToPath } from 'node:url';

export const cliPath = fileURLToPath(new URL('../../bin/codemate.js', import.meta.url));
export const manifestsDir = fileURLToPath(new URL('../../manifests/', import.meta.url));
export const sessionScriptsDir = fileURLToPath(new URL('../../setup/scripts/', import.meta.url)).replace(
  /\/$/,
  '',
);
export const sessionPluginsDir = fileURLToPath(new URL('../../plugins/', import.meta.url)).replace(/\/$/, '');
/** The checkout's root: the images' build context (only a source checkout holds the Dockerfiles and src/). */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
