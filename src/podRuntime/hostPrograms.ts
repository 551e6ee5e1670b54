/**
 * What the local pod runtime runs on the host in place of a container image, all in one place. It knows
 * two things, both of this checkout:
 *
 * - the session image's scripts: a container whose command is one of /opt/codemate/bin/* (whatever image
 *   names it) runs that script from setup/scripts;
 * - the project's own image (the root Dockerfile, published as imageRepositories.codemate, any tag or
 *   digest), whose entrypoint is `node /app/bin/codemate.js`: its args run `node bin/codemate.js <args>`,
 *   with the image's ENV.
 *
 * Every other container is not run, and its pod's status says why.
 */
import path from 'node:path';
import { imageRepositories } from '../config/defaults.js';
import { cliPath } from '../config/packagePaths.js';

/** Where the session image keeps its scripts. */
export const imageScriptsDir = '/opt/codemate/bin';

export interface HostProgram {
  /** A session (the session image's scripts) or one of CodeMate's servers (the project's image). */
  kind: 'session' | 'server';
  command: string;
  args: string[];
  /** The image's own environment (its ENV lines). */
  env: Record<string, string>;
}

export interface ContainerSpec {
  image?: string | undefined;
  command?: string[] | undefined;
  args?: string[] | undefined;
}

/** The repository of an image reference: without its tag or digest. */
export function imageRepository(image: string): string {
  const name = image.split('@')[0]!;
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > lastSlash ? name.slice(0, colon) : name;
}

/** How to run `container` on the host, or why it cannot be. */
export function hostProgram(
  container: ContainerSpec,
  scriptsDir: string,
): { program: HostProgram } | { unsupported: string } {
  const [command, ...commandArgs] = container.command ?? [];
  if (command?.startsWith(`${imageScriptsDir}/`)) {
    return {
      program: {
        kind: 'session',
        command: path.join(scriptsDir, path.basename(command)),
        args: [...commandArgs, ...(container.args ?? [])],
        env: {},
      },
    };
  }
  if (container.image && imageRepository(container.image) === imageRepositories.codemate) {
    if (command) {
      return {
        unsupported: `container command ${JSON.stringify(container.command)} replaces the entrypoint of ${imageRepositories.codemate}; the sandbox's process runtime runs only its entrypoint (node bin/codemate.js) with the container's args`,
      };
    }
    return {
      program: {
        kind: 'server',
        command: process.execPath,
        // The Dockerfile's CMD when the pod gives no args.
        args: [cliPath, ...(container.args ?? ['--help'])],
        env: { NODE_ENV: 'production' },
      },
    };
  }
  return {
    unsupported: `the sandbox's process runtime runs only the session image's ${imageScriptsDir} scripts and ${imageRepositories.codemate} images as host processes, not ${container.image ?? 'a container without an image'}; run the sandbox with \`codemate dev up --runtime containerd\` for other images`,
  };
}
