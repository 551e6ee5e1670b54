/**
 * What reached the model in a sandbox: the request log of its local model server (component
 * `model-server` in `codemate dev status`). Tests assert on this, not on the pane: the real TUI draws on
 * the alternate screen and collapses long pastes.
 */
import { frameBody, type MessageSpec } from '../../src/api/message.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import type { ModelRequest } from '../../src/sandbox/modelServer.js';
import { modelServerHost } from '../../src/sandbox/components.js';
import { sandboxStatus } from '../../src/sandbox/sandbox.js';
import { framed, normalised, promptsReceived } from './model.js';

export async function modelServerUrl(stateDir: string): Promise<string> {
  const status = await sandboxStatus(stateDir);
  const server = status.components.find((c) => c.name === 'model-server');
  if (!server?.port) throw new Error(`the sandbox in ${stateDir} runs no model-server`);
  return `http://${modelServerHost(status.runtime ?? 'process')}:${server.port}`;
}

export async function modelRequests(stateDir: string): Promise<ModelRequest[]> {
  const res = await fetch(`${await modelServerUrl(stateDir)}/_requests`);
  if (!res.ok) throw new Error(`GET /_requests answered ${res.status}`);
  return (await res.json()) as ModelRequest[];
}

/**
 * The prompts that reached the agent (its own turns, which offer tools) holding `token`, one entry per
 * occurrence: a prompt pasted twice, or twice into one prompt, shows twice.
 */
export async function promptsWith(stateDir: string, token: string): Promise<string[]> {
  const found: string[] = [];
  for (const request of await modelRequests(stateDir)) {
    if (request.tools === 0) continue;
    for (const text of request.userTexts) {
      const n = text.split(token).length - 1;
      for (let i = 0; i < n; i++) found.push(text);
    }
  }
  return found;
}

/**
 * The prompts holding `token`, once at least `count` have reached the model. An acknowledged paste may
 * still be queued behind a running turn, so it reaches the model a little later; the caller then asserts
 * the exact number.
 */
export async function promptsReaching(
  stateDir: string,
  token: string,
  { count = 1, timeoutMs = 30_000 }: { count?: number; timeoutMs?: number } = {},
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await promptsWith(stateDir, token);
    if (found.length >= count) return found;
    if (Date.now() > deadline) {
      throw new Error(
        `${count} prompt(s) with ${JSON.stringify(token)} did not reach the model within ${timeoutMs} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * The exact text the model receives for one delivered message (docs/session.md's normalisation): the
 * framed body under its tagged marker line, as the session in `pod` pastes it. The session key is read
 * through `kubectl exec`; Claude's session id (which names `<pasted_content>`) from the pod's spec.
 */
export async function expectedAtModel(
  kube: Kube,
  exec: (pod: string, script: string) => Promise<string>,
  namespace: string,
  pod: string,
  message: { metadata: { name?: string }; spec: MessageSpec },
): Promise<string> {
  // The session image leaves CODEMATE_STATE_DIR to its default (codemate-lib.sh); the local pod runtime sets it.
  const key = (
    await exec(pod, 'cat "${CODEMATE_STATE_DIR:-$CODEMATE_WORKSPACE/.codemate}/session-key"')
  ).trim();
  const spec = await kube.get<
    KubeObject & { spec?: { containers?: Array<{ env?: Array<{ name: string; value?: string }> }> } }
  >('v1', 'Pod', pod, namespace);
  const sessionId =
    spec.spec?.containers?.flatMap((c) => c.env ?? []).find((e) => e.name === 'CODEMATE_SESSION_ID')?.value ??
    '';
  return normalised(framed(key, message.metadata.name!, frameBody(message.spec)), { sessionId });
}

/** Every prompt that reached the agent, normalised as docs/session.md says (test/helpers/model.ts). */
export async function receivedPrompts(stateDir: string): Promise<string[]> {
  return promptsReceived(await modelRequests(stateDir));
}

/** How slowly the sandbox's model server streams its answers (`PUT /_config`), to hold a turn open. */
export async function modelSpeed(
  stateDir: string,
  config: { chunkDelayMs: number; chunks: number },
): Promise<void> {
  const res = await fetch(`${await modelServerUrl(stateDir)}/_config`, {
    method: 'PUT',
    body: JSON.stringify(config),
  });
  if (!res.ok) throw new Error(`PUT /_config answered ${res.status}`);
}
