/** `codemate webhook` (the server) and `codemate webhook replay` (sign and send a saved payload). */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { signPayload } from '../../clients/webhooks.js';
import { replayConfig, webhookConfig, type ReplayConfig } from '../../config/index.js';
import { runWebhook } from '../../webhook/run.js';
import { CodemateError } from '../errors.js';
import { readAll } from '../input.js';
import type { Output } from '../output.js';
import type { Verb } from '../program.js';

export const serve: Verb = async ({ globals }, deps) => {
  await runWebhook(webhookConfig(await deps.env(), globals));
};

export const replay: Verb = async ({ flags }, deps) => {
  await runReplay(replayConfig(await deps.env(), flags), { out: deps.out, stdin: process.stdin });
};

export async function runReplay(
  config: ReplayConfig,
  deps: { out: Output; stdin: NodeJS.ReadableStream },
): Promise<void> {
  let body: string;
  try {
    body = config.payload === '-' ? await readAll(deps.stdin) : await readFile(config.payload, 'utf8');
  } catch (error) {
    throw new CodemateError(
      `cannot read the payload ${config.payload}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  try {
    JSON.parse(body);
  } catch (error) {
    throw new CodemateError(`the payload ${config.payload} is not JSON: ${(error as Error).message}`, {
      hint: 'pass the request body of a delivery, as GitHub sent it',
    });
  }
  const delivery = config.delivery ?? randomUUID();
  let response: Response;
  try {
    response = await fetch(config.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'GitHub-Hookshot/codemate-replay',
        'x-github-event': config.event,
        'x-github-delivery': delivery,
        'x-hub-signature-256': await signPayload(config.secret, body),
      },
      body,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new CodemateError(`cannot reach ${config.url}: ${cause}`, {
      hint: 'is `codemate webhook` running there? `codemate dev status` shows the sandbox webhook URL',
    });
  }
  const text = await response.text();
  deps.out.info(`${config.event} delivery ${delivery} → ${response.status} ${response.statusText}`);
  deps.out.data(text);
  if (!response.ok) {
    throw new CodemateError(`the webhook answered ${response.status}`, {
      hint:
        response.status === 401
          ? 'the secret differs from the server: use the same GITHUB_WEBHOOK_SECRET on both sides'
          : 'the answer above says why',
    });
  }
}
