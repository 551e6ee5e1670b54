// What every benchmark here shares: quantiles, a p50/p99/max summary, waiting for a condition, a
// namespace with the two secrets a CodeMate names, and writing results/<name>.json.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

/**
 * Refuses to measure on a Node older than the project's (package.json engines; 24 is what the image
 * runs). The benchmarks that start the operator or the webhook run them with this same Node, and a shell
 * whose PATH does not start with node_modules/.bin has the machine's own, older Node.
 */
export function requireProjectNode() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) {
    throw new Error(
      `this benchmark runs CodeMate on the Node that runs it, and that is ${process.version}; the project ` +
        'runs on Node 24 (22 at least). Run it with `npm run bench:<name>`, or with node_modules/.bin first on PATH.',
    );
  }
}

export const quantile = (xs, q) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};

export const summary = (xs) => ({
  n: xs.length,
  p50: +quantile(xs, 0.5).toFixed(1),
  p99: +quantile(xs, 0.99).toFixed(1),
  // A loop, not Math.max(...xs): a throughput run has more samples than the call stack takes arguments.
  max: +xs.reduce((a, b) => (b > a ? b : a), -Infinity).toFixed(1),
});

/** A process's resident memory and its peak, in MiB, from /proc/<pid>/status (`self` for this one). */
export async function rssMiB(pid = 'self') {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: +(kb('VmRSS') / 1024).toFixed(1), peak: +(kb('VmHWM') / 1024).toFixed(1) };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 20 ms until it returns something truthy. */
export async function until(check, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Prints the results and keeps them in bench/results/<name>.json. */
export async function writeResults(name, results) {
  console.log(JSON.stringify(results, null, 2));
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, `${name}.json`), JSON.stringify(results, null, 2) + '\n');
}

/** A namespace holding the github-token and anthropic-key secrets that benchmark CodeMates name. */
export async function namespaceWithSecrets(kube, ns) {
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const name of ['github-token', 'anthropic-key']) {
    await kube.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: ns },
      stringData: { token: 'x' },
    });
  }
}
