import http from 'node:http';
import https from 'node:https';

export interface ProbeTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Health endpoints of kube-controller-manager, kube-scheduler and kwok use self-signed certificates. */
  insecure?: boolean;
}

/** GET a URL on loopback; resolves with the status and body, or rejects on connection errors. */
export function probe(
  url: string,
  tls: ProbeTls = {},
  timeoutMs = 3000,
): Promise<{ status: number; body: string }> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      target,
      {
        method: 'GET',
        timeout: timeoutMs,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: !tls.insecure,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** True when the URL answers 200. */
export async function isHealthy(url: string, tls: ProbeTls = {}): Promise<boolean> {
  try {
    return (await probe(url, tls)).status === 200;
  } catch {
    return false;
  }
}

/** Polls `check` until it is true; rejects with `describe()` when the deadline passes. */
export async function waitFor(
  check: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; describe: () => Promise<string> | string },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(await options.describe());
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 200));
  }
}
