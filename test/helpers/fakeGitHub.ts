/**
 * A fake GitHub REST API for tests: stateful (users, pull requests, issue comments, review comments,
 * reviews, reactions), with ETags and 304s that cost nothing, rate-limit headers, and injectable faults
 * (403/429 rate limits, 5xx, slow answers). Every object is built from the example in GitHub's own
 * OpenAPI description (@octokit/openapi), and every response body is validated against that operation's
 * schema before it is sent, so the fake cannot drift from the real API's shapes.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Ajv as AjvInstance, ValidateFunction } from 'ajv';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

const require = createRequire(import.meta.url);
// ajv and ajv-formats are CommonJS with a default export; load them as such.
const { Ajv } = require('ajv') as { Ajv: new (options: object) => AjvInstance };
const addFormats = (require('ajv-formats') as { default: (ajv: AjvInstance) => void }).default;
type Json = Record<string, unknown>;
interface OpenApi {
  paths: Record<
    string,
    Record<
      string,
      {
        responses: Record<
          string,
          {
            content?: Record<
              string,
              { schema: Json; examples?: Record<string, { $ref?: string; value?: unknown }> }
            >;
          }
        >;
      }
    >
  >;
  components: Json & { examples: Record<string, { value: unknown }> };
}

let spec: OpenApi | undefined;
let ajv: AjvInstance | undefined;
const validators = new Map<string, ValidateFunction>();
const specId = 'https://api.github.com/openapi.json';

function openApi(): OpenApi {
  spec ??= require('@octokit/openapi/generated/api.github.com.json') as OpenApi;
  return spec;
}

function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node as Json).map(([k, v]) => [
        k,
        k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `${specId}${v}` : rewriteRefs(v),
      ]),
    );
  }
  return node;
}

function validator(path: string, method: string, status: string): ValidateFunction {
  const key = `${method} ${path} ${status}`;
  const known = validators.get(key);
  if (known) return known;
  {
    if (!ajv) {
      ajv = new Ajv({ strict: false, allErrors: false, validateFormats: true });
      addFormats(ajv);
      ajv.addSchema({ $id: specId, components: rewriteRefs(openApi().components) as Json });
    }
    const schema = openApi().paths[path]![method]!.responses[status]!.content!['application/json']!.schema;
    const v = ajv.compile(rewriteRefs(schema) as Json);
    validators.set(key, v);
    return v;
  }
}

/** A deep copy of the example GitHub publishes for an operation's response. */
function example(path: string, method: string, status = '200'): Json {
  const content = openApi().paths[path]![method]!.responses[status]!.content!['application/json']!;
  const first = Object.values(content.examples ?? {})[0]!;
  const value = first.$ref ? openApi().components.examples[first.$ref.split('/').pop()!]!.value : first.value;
  const one = Array.isArray(value) ? value[0] : value;
  return structuredClone(one) as Json;
}

export interface FakeUser {
  login: string;
  id: number;
  type?: 'User' | 'Bot';
}

interface Item {
  id: number;
  user: FakeUser;
  body: string;
  association: string;
  createdAt: string;
  state?: string;
}

interface Pull {
  number: number;
  head: string;
  state: 'open' | 'closed';
  merged: boolean;
  issueComments: Item[];
  reviewComments: Item[];
  reviews: Item[];
}

export type Fault =
  | { kind: 'status'; status: 500 | 502 | 503 }
  | { kind: 'rateLimit'; status: 403 | 429; resetInSeconds: number; retryAfter?: boolean }
  | { kind: 'slow'; delayMs: number };

export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  /** Counted against the rate limit: GitHub does not count 304s. */
  charged: boolean;
}

function etagOf(body: string): string {
  return `W/"${createHash('sha1').update(body).digest('hex')}"`;
}

export class FakeGitHub {
  readonly app: FastifyInstance;
  url = '';
  readonly requests: RequestRecord[] = [];
  readonly reactions: Array<{
    subject: 'issue_comment' | 'review_comment';
    id: number;
    content: string;
    by: string;
  }> = [];
  private readonly tokens = new Map<string, FakeUser>();
  private readonly pulls = new Map<string, Pull>();
  private readonly faults: Array<{ fault: Fault; path?: RegExp }> = [];
  private nextId = 1000;
  rateLimit = { limit: 5000, remaining: 5000, reset: Math.floor(Date.now() / 1000) + 3600 };

  constructor() {
    this.app = Fastify({ logger: false });
    this.routes();
  }

  async start(): Promise<string> {
    await this.app.listen({ port: 0, host: '127.0.0.1' });
    const address = this.app.server.address() as { port: number };
    this.url = `http://127.0.0.1:${address.port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await this.app.close();
  }

  addToken(token: string, user: FakeUser): void {
    this.tokens.set(token, user);
  }

  addPull(owner: string, repo: string, number: number, head: string): void {
    this.pulls.set(`${owner}/${repo}#${number}`, {
      number,
      head,
      state: 'open',
      merged: false,
      issueComments: [],
      reviewComments: [],
      reviews: [],
    });
  }

  private pull(owner: string, repo: string, number: number): Pull {
    const p = this.pulls.get(`${owner}/${repo}#${number}`);
    if (!p) throw new Error(`no pull request ${owner}/${repo}#${number}`);
    return p;
  }

  private add(list: Item[], user: FakeUser, body: string, association: string, state?: string): number {
    const id = this.nextId++;
    list.push({
      id,
      user,
      body,
      association,
      createdAt: new Date().toISOString(),
      ...(state ? { state } : {}),
    });
    return id;
  }

  comment(
    owner: string,
    repo: string,
    number: number,
    user: FakeUser,
    body: string,
    association = 'MEMBER',
  ): number {
    return this.add(this.pull(owner, repo, number).issueComments, user, body, association);
  }

  reviewComment(
    owner: string,
    repo: string,
    number: number,
    user: FakeUser,
    body: string,
    association = 'MEMBER',
  ): number {
    return this.add(this.pull(owner, repo, number).reviewComments, user, body, association);
  }

  review(
    owner: string,
    repo: string,
    number: number,
    user: FakeUser,
    body: string,
    state = 'CHANGES_REQUESTED',
    association = 'MEMBER',
  ): number {
    return this.add(this.pull(owner, repo, number).reviews, user, body, association, state);
  }

  close(owner: string, repo: string, number: number, merged: boolean): void {
    const p = this.pull(owner, repo, number);
    p.state = 'closed';
    p.merged = merged;
  }

  /** The next matching request gets this answer instead. */
  fail(fault: Fault, path?: RegExp): void {
    this.faults.push({ fault, ...(path ? { path } : {}) });
  }

  /** Faults not yet answered. */
  pendingFaults(): number {
    return this.faults.length;
  }

  charged(): number {
    return this.requests.filter((r) => r.charged).length;
  }

  private user(u: FakeUser): Json {
    const base = example('/repos/{owner}/{repo}/issues/{issue_number}/comments', 'get').user as Json;
    return {
      ...base,
      login: u.login,
      id: u.id,
      node_id: `U_${u.id}`,
      type: u.type ?? 'User',
      // A GitHub App's bot user lives at /apps/<slug>; its login carries a [bot] suffix.
      html_url:
        u.type === 'Bot'
          ? `https://github.com/apps/${u.login.replace(/\[bot\]$/, '')}`
          : `https://github.com/${u.login}`,
    };
  }

  private routes(): void {
    const app = this.app;
    app.addHook('onRequest', async (req, reply) => {
      const token = /^(?:token|Bearer) (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      if (!token || !this.tokens.has(token)) {
        this.record(req, 401, true);
        return reply
          .code(401)
          .send({ message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      }
      const i = this.faults.findIndex((f) => !f.path || f.path.test(req.url));
      if (i >= 0) {
        const [{ fault }] = this.faults.splice(i, 1) as [{ fault: Fault }];
        if (fault.kind === 'slow') {
          await new Promise((r) => setTimeout(r, fault.delayMs));
        } else if (fault.kind === 'status') {
          this.record(req, fault.status, true);
          return reply.code(fault.status).send({ message: 'Server Error' });
        } else {
          const reset = Math.floor(Date.now() / 1000) + fault.resetInSeconds;
          this.record(req, fault.status, true);
          reply
            .header('x-ratelimit-limit', this.rateLimit.limit)
            .header('x-ratelimit-remaining', 0)
            .header('x-ratelimit-reset', reset)
            .header('x-ratelimit-used', this.rateLimit.limit)
            .header('x-ratelimit-resource', 'core');
          if (fault.retryAfter) reply.header('retry-after', fault.resetInSeconds);
          return reply.code(fault.status).send({
            message: 'API rate limit exceeded for user.',
            documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
          });
        }
      }
      return undefined;
    });

    const send = (
      req: FastifyRequest,
      reply: FastifyReply,
      path: string,
      method: string,
      body: unknown,
      status = 200,
    ) => {
      const validate = validator(path, method, String(status));
      if (!validate(body)) {
        throw new Error(
          `fake GitHub answer for ${method.toUpperCase()} ${path} breaks GitHub's schema: ${JSON.stringify(validate.errors?.slice(0, 3))}`,
        );
      }
      const text = JSON.stringify(body);
      const etag = etagOf(text);
      reply.header('etag', etag).header('content-type', 'application/json; charset=utf-8');
      if (method === 'get' && req.headers['if-none-match'] === etag) {
        this.record(req, 304, false);
        this.rateHeaders(reply);
        return reply.code(304).send();
      }
      this.rateLimit.remaining = Math.max(0, this.rateLimit.remaining - 1);
      this.record(req, status, true);
      this.rateHeaders(reply);
      return reply.code(status).send(text);
    };

    type P = { owner: string; repo: string; n: string; id: string };
    app.get('/user', async (req, reply) => {
      const u = this.tokens.get(/ (.+)$/.exec(req.headers.authorization!)![1]!)!;
      const body = { ...example('/user', 'get'), login: u.login, id: u.id, type: u.type ?? 'User' };
      return send(req, reply, '/user', 'get', body);
    });
    app.get<{ Params: P; Querystring: { head?: string; state?: string } }>(
      '/repos/:owner/:repo/pulls',
      async (req, reply) => {
        const { owner, repo } = req.params;
        const head = req.query.head?.split(':').pop();
        const items = [...this.pulls.entries()]
          .filter(
            ([k, p]) =>
              k.startsWith(`${owner}/${repo}#`) &&
              (!head || p.head === head) &&
              (req.query.state === 'all' || p.state === (req.query.state ?? 'open')),
          )
          .map(([, p]) => this.pullSimple(owner, repo, p));
        return send(req, reply, '/repos/{owner}/{repo}/pulls', 'get', items);
      },
    );
    app.get<{ Params: P }>('/repos/:owner/:repo/pulls/:n', async (req, reply) => {
      const { owner, repo, n } = req.params;
      const p = this.pulls.get(`${owner}/${repo}#${n}`);
      if (!p) return reply.code(404).send({ message: 'Not Found' });
      return send(
        req,
        reply,
        '/repos/{owner}/{repo}/pulls/{pull_number}',
        'get',
        this.pullDetail(owner, repo, p),
      );
    });
    app.get<{ Params: P }>('/repos/:owner/:repo/issues/:n/comments', async (req, reply) => {
      const { owner, repo, n } = req.params;
      const items = this.pull(owner, repo, Number(n)).issueComments.map((c) => ({
        ...example('/repos/{owner}/{repo}/issues/{issue_number}/comments', 'get'),
        id: c.id,
        node_id: `IC_${c.id}`,
        body: c.body,
        user: this.user(c.user),
        author_association: c.association,
        created_at: c.createdAt,
        updated_at: c.createdAt,
        html_url: `https://github.com/${owner}/${repo}/pull/${n}#issuecomment-${c.id}`,
        issue_url: `${this.url}/repos/${owner}/${repo}/issues/${n}`,
        url: `${this.url}/repos/${owner}/${repo}/issues/comments/${c.id}`,
      }));
      return send(req, reply, '/repos/{owner}/{repo}/issues/{issue_number}/comments', 'get', items);
    });
    app.get<{ Params: P }>('/repos/:owner/:repo/pulls/:n/comments', async (req, reply) => {
      const { owner, repo, n } = req.params;
      const items = this.pull(owner, repo, Number(n)).reviewComments.map((c) => ({
        ...example('/repos/{owner}/{repo}/pulls/{pull_number}/comments', 'get'),
        id: c.id,
        node_id: `RC_${c.id}`,
        body: c.body,
        user: this.user(c.user),
        author_association: c.association,
        created_at: c.createdAt,
        updated_at: c.createdAt,
        html_url: `https://github.com/${owner}/${repo}/pull/${n}#discussion_r${c.id}`,
      }));
      return send(req, reply, '/repos/{owner}/{repo}/pulls/{pull_number}/comments', 'get', items);
    });
    app.get<{ Params: P }>('/repos/:owner/:repo/pulls/:n/reviews', async (req, reply) => {
      const { owner, repo, n } = req.params;
      const items = this.pull(owner, repo, Number(n)).reviews.map((r) => ({
        ...example('/repos/{owner}/{repo}/pulls/{pull_number}/reviews', 'get'),
        id: r.id,
        node_id: `PRR_${r.id}`,
        body: r.body,
        state: r.state,
        user: this.user(r.user),
        author_association: r.association,
        submitted_at: r.createdAt,
        html_url: `https://github.com/${owner}/${repo}/pull/${n}#pullrequestreview-${r.id}`,
      }));
      return send(req, reply, '/repos/{owner}/{repo}/pulls/{pull_number}/reviews', 'get', items);
    });
    for (const [subject, route, path] of [
      [
        'issue_comment',
        '/repos/:owner/:repo/issues/comments/:id/reactions',
        '/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions',
      ],
      [
        'review_comment',
        '/repos/:owner/:repo/pulls/comments/:id/reactions',
        '/repos/{owner}/{repo}/pulls/comments/{comment_id}/reactions',
      ],
    ] as const) {
      app.post<{ Params: P; Body: { content: string } }>(route, async (req, reply) => {
        const by = this.tokens.get(/ (.+)$/.exec(req.headers.authorization!)![1]!)!;
        const id = Number(req.params.id);
        const existing = this.reactions.find(
          (r) => r.subject === subject && r.id === id && r.content === req.body.content && r.by === by.login,
        );
        if (!existing) this.reactions.push({ subject, id, content: req.body.content, by: by.login });
        const body = { ...example(path, 'post'), content: req.body.content, user: this.user(by) };
        // GitHub answers 200 when the reaction already existed, 201 when it created it.
        return send(req, reply, path, 'post', body, existing ? 200 : 201);
      });
    }
  }

  private pullSimple(owner: string, repo: string, p: Pull): Json {
    return this.pullFrom(example('/repos/{owner}/{repo}/pulls', 'get'), owner, repo, p);
  }

  private pullDetail(owner: string, repo: string, p: Pull): Json {
    return {
      ...this.pullFrom(example('/repos/{owner}/{repo}/pulls/{pull_number}', 'get'), owner, repo, p),
      merged: p.merged,
    };
  }

  private pullFrom(base: Json, owner: string, repo: string, p: Pull): Json {
    return {
      ...base,
      // GitHub's published examples list requested teams without the now-required `type`.
      requested_teams: [],
      number: p.number,
      state: p.state,
      html_url: `https://github.com/${owner}/${repo}/pull/${p.number}`,
      head: { ...(base.head as Json), ref: p.head, label: `${owner}:${p.head}` },
      merged_at: p.merged ? new Date().toISOString() : null,
      closed_at: p.state === 'closed' ? new Date().toISOString() : null,
    };
  }

  private rateHeaders(reply: FastifyReply): void {
    reply
      .header('x-ratelimit-limit', this.rateLimit.limit)
      .header('x-ratelimit-remaining', this.rateLimit.remaining)
      .header('x-ratelimit-reset', this.rateLimit.reset)
      .header('x-ratelimit-used', this.rateLimit.limit - this.rateLimit.remaining)
      .header('x-ratelimit-resource', 'core');
  }

  private record(req: FastifyRequest, status: number, charged: boolean): void {
    this.requests.push({ method: req.method, path: req.url, status, charged });
  }
}
