// What the benchmarks that go through GitHub share: pull request o/r#7 as GitHub shows it (signed
// issue_comment deliveries, a GitHub stand-in for the operator, a git origin the session clones), and a
// CodeMate that follows it, up to its session being ready.
import { execFile } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { execInPod } from '../dist/clients/exec.js';
import { toItem } from '../dist/api/github.js';
import { messageFor } from '../dist/github/items.js';
import { until } from './stats.mjs';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

export const repository = 'o/r';
export const pullRequest = 7;
export const botLogin = 'codemate-bot';
const codemateApi = { group: 'codemate.io', version: 'v1alpha1', plural: 'codemates' };

// Comment ids are unique across the whole run (every generator draws from here), because message
// names derive from them.
let nextId = 4_000_000_000;

/**
 * A generator of signed issue_comment.created deliveries on o/r#7. The published examples are all on
 * plain issues; GitHub marks a pull request's issue with issue.pull_request, so the clone gets it. The
 * payload is serialized once and only the comment id, created_at and (with `token`) the end of the
 * comment's body are spliced in per request: a load generator shares the two cores with the server, so it
 * should spend as little as it can.
 *
 * `token(id)`, when given, is appended to each comment's body after a space, so that the text can be
 * found where it arrives; the delivery carries it as `token`.
 */
export function deliveries(secret, { token } = {}) {
  const example = require('@octokit/webhooks-examples')
    .find((e) => e.name === 'issue_comment')
    .examples.find((p) => p.action === 'created');
  const payload = JSON.parse(JSON.stringify(example));
  const [owner, name] = repository.split('/');
  payload.repository = {
    ...payload.repository,
    name,
    full_name: repository,
    owner: { ...payload.repository.owner, login: owner },
  };
  payload.issue.number = pullRequest;
  payload.issue.pull_request = { url: `https://api.github.com/repos/${repository}/pulls/${pullRequest}` };
  Object.assign(payload.comment, {
    id: '@@ID@@',
    created_at: '@@AT@@',
    author_association: 'OWNER',
    user: { ...payload.comment.user, type: 'User' },
    ...(token ? { body: `${payload.comment.body} @@TOKEN@@` } : {}),
  });
  const pieces = JSON.stringify(payload).split(/("@@ID@@"|@@AT@@|@@TOKEN@@)/);
  return () => {
    const id = nextId++;
    const at = new Date().toISOString();
    const tok = token?.(id);
    const fill = new Map([
      ['"@@ID@@"', String(id)],
      ['@@AT@@', at],
      ['@@TOKEN@@', tok],
    ]);
    const body = pieces.map((p) => fill.get(p) ?? p).join('');
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/bench',
      'x-github-event': 'issue_comment',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
    };
    return { id, body, headers, ...(tok ? { token: tok } : {}) };
  };
}

/**
 * A GitHub stand-in for the operator: whose token it is, the pull request, empty comment lists, and 201
 * for the 👀 reaction the operator adds after each delivery (the sandbox has no internet).
 */
export async function startGitHubStub() {
  let reactions = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const url = req.url.split('?')[0];
    if (req.method === 'POST' && url.endsWith('/reactions'))
      return send(201, { id: ++reactions, content: 'eyes' });
    if (url === '/user') return send(200, { login: botLogin, id: 1, type: 'User' });
    if (url === `/repos/${repository}/pulls/${pullRequest}`) {
      const html_url = `https://github.com/${repository}/pull/${pullRequest}`;
      return send(200, {
        number: pullRequest,
        html_url,
        state: 'open',
        merged: false,
        head: { ref: 'feature' },
      });
    }
    if (/\/(comments|reviews)$/.test(url)) return send(200, []);
    send(404, { message: 'Not Found' });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    reactions: () => reactions,
    close: () => new Promise((r) => server.close(r)),
  };
}

/** A bare origin for o/r with main, feature and refs/pull/7/head, where the session clones from. */
export async function localOrigin(dir) {
  const src = path.join(dir, 'src');
  const git = (...a) => run('git', ['-C', src, '-c', 'user.name=b', '-c', 'user.email=b@b', ...a]);
  await run('git', ['init', '-q', '-b', 'main', src]);
  await git('commit', '-q', '--allow-empty', '-m', 'init');
  await git('checkout', '-q', '-b', 'feature');
  await git('commit', '-q', '--allow-empty', '-m', 'feature');
  const origin = path.join(dir, ...repository.split('/')) + '.git';
  await run('git', ['clone', '-q', '--bare', src, origin]);
  await run('git', ['-C', origin, 'update-ref', `refs/pull/${pullRequest}/head`, 'refs/heads/feature']);
}

/** A CodeMate following o/r#7, with its GitHub login recorded as the operator's poller would. */
export async function followingCodeMate(kube, ns, name) {
  const cm = await kube.create({
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: { name, namespace: ns },
    spec: {
      repository: { url: `https://github.com/${repository}.git`, branch: 'feature', pullRequest },
      github: { tokenSecretRef: { name: 'github-token' } },
      anthropic: { apiKeySecretRef: { name: 'anthropic-key' } },
      // Monitoring must stay on (the webhook only routes to monitored CodeMates); a long interval keeps
      // the poller out of the way after its first poll.
      monitoring: { intervalSeconds: 86400 },
    },
  });
  // Without it the webhook answers "deferred" and stores nothing (src/webhook/handlers/item.ts).
  await kube.patchStatus({ ...codemateApi, namespace: ns, name }, { github: { login: botLogin } });
  return cm;
}

/** The CodeMateMessage the webhook writes for delivery `d` (same code path: toItem, messageFor). */
export function messageOf(cm, d) {
  const comment = JSON.parse(d.body).comment;
  return messageFor(cm, 'issue_comment', toItem(comment, comment.created_at), pullRequest, botLogin);
}

/** Waits until the CodeMate's session runs and answers codemate-ready; returns the CodeMate's status. */
export async function sessionReady(kube, ns, name, timeoutMs = 60_000) {
  const status = await until(
    async () => {
      const c = await kube.get('codemate.io/v1alpha1', 'CodeMate', name, ns);
      return c.status?.phase === 'Running' && c.status;
    },
    'session running',
    timeoutMs,
  );
  // kwok reports the pod Ready before the local runtime has the session up; ask the session itself.
  await until(
    async () =>
      (
        await execInPod(kube, ns, status.podName, ['codemate-ready'], {
          container: 'session',
          timeoutMs: 10_000,
        })
      ).exitCode === 0,
    'session ready',
    timeoutMs,
  );
  return status;
}
