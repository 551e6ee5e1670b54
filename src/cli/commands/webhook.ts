/** `codemate webhook` (the server) and `codemate webhook replay` (sign and send a saved payload). */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { signPayload } from '../../clients/webhooks.js';
import { replayConfig, webhookConfig, type ReplayConfig } from '../../config/index.js';
import { runWebhook } from '../../webhook/run.js';
import { CodemateError } from '../errors.js';
import { readAll } from '../input.js';
import type { CliDeps } from '../main.js';
import type { Output } from '../output.js';

export function registerWebhook(program: Command, deps: CliDeps): void {
  const webhook = program
    .command('webhook')
    .description(
      'receive GitHub webhooks and turn comments into CodeMateMessages (in-cluster server; JSON logs)',
    )
    .option(
      '--port <port>',
      'port for POST /webhook/github, /healthz, /readyz, /metrics (env PORT; default 8080)',
    )
    .option('--host <address>', 'address to listen on (default 0.0.0.0)')
    .option(
      '--secret-file <path>',
      'file with the webhook secret(s), comma- or newline-separated (env GITHUB_WEBHOOK_SECRET_FILE)',
    )
    .option(
      '--watch-namespace <ns>',
      'route only to CodeMates in this namespace (env CODEMATE_WATCH_NAMESPACE)',
    )
    .option('--body-timeout-seconds <s>', 'answer 408 when a body has not arrived by then (default 10)')
    .option('--delivery-cache-size <n>', 'X-GitHub-Delivery ids remembered for replays (default 10000)')
    .option('--log-level <level>', 'trace, debug, info, warn or error (env LOG_LEVEL)')
    .addHelpText(
      'after',
      `
The secret is GITHUB_WEBHOOK_SECRET (or --secret-file); list several, comma-separated, while you rotate
it. In a cluster it runs from manifests/webhook.yaml. Set up GitHub as in docs/webhook.md.

Examples:
  $ GITHUB_WEBHOOK_SECRET=s3cret codemate webhook --port 8080
  $ codemate webhook replay --event issue_comment --payload comment.json --url http://127.0.0.1:8080`,
    )
    .action(async (flags: Record<string, unknown>, command: Command) => {
      await runWebhook(webhookConfig(deps.env, { ...command.optsWithGlobals(), ...flags }));
    });

  webhook
    .command('replay')
    .description('sign a saved GitHub payload with the webhook secret and send it, as GitHub would')
    .requiredOption('--event <name>', 'the X-GitHub-Event, e.g. issue_comment, pull_request_review, ping')
    .requiredOption('--payload <file>', 'the JSON payload (- reads stdin)')
    .option(
      '--url <url>',
      'the webhook server (env CODEMATE_WEBHOOK_URL, set by `dev up`; default http://127.0.0.1:8080/webhook/github)',
    )
    .option('--delivery <id>', 'the X-GitHub-Delivery id (default: a new one; reuse one to test replays)')
    .option(
      '--secret-file <path>',
      'file with the secret (env GITHUB_WEBHOOK_SECRET, or GITHUB_WEBHOOK_SECRET_FILE as `dev up` sets it)',
    )
    .addHelpText(
      'after',
      `
The payload is sent as read (UTF-8), signed with the first secret. Copy payloads from a
webhook's "Recent Deliveries" page on GitHub, or from @octokit/webhooks-examples.

Examples:
  $ export GITHUB_WEBHOOK_SECRET=s3cret
  $ codemate webhook replay --event issue_comment --payload comment.json
  $ codemate webhook replay --event ping --payload ping.json --url https://codemate.example.com
  $ gh api repos/OWNER/REPO/hooks/ID/deliveries/DID --jq .request.payload | \\
      codemate webhook replay --event issue_comment --payload -`,
    )
    .action(async (flags: Record<string, unknown>) => {
      await runReplay(replayConfig(deps.env, flags), { out: deps.out, stdin: process.stdin });
    });
}

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
