/**
 * The webhook's HTTP layer on its own: what is refused from the headers before any body is read, the
 * answer when storing takes too long, and bounded metric labels. Routing and storage are tested against
 * the real apiserver in test/integration/webhook.test.ts.
 */
import { createHmac } from 'node:crypto';
import net from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { SignatureVerifier } from '../../../src/clients/webhooks.js';
import { webhookMetrics } from '../../../src/observability/metrics.js';
import type { Answer } from '../../../src/webhook/answer.js';
import { ReplayCache } from '../../../src/webhook/replayCache.js';
import { buildWebhookServer, parsePayload, type WebhookServerOptions } from '../../../src/webhook/server.js';

const secret = 'unit-secret';
const sign = (body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

function server(handle: () => Promise<Answer>, extra: Partial<WebhookServerOptions> = {}) {
  const metrics = webhookMetrics();
  let handled = 0;
  const app = buildWebhookServer({
    verifier: new SignatureVerifier([secret]),
    replayCache: new ReplayCache(10),
    handle: async () => {
      handled += 1;
      return handle();
    },
    answerError: () => ({ status: 503, body: { status: 'unavailable', reason: 'deadline' } }),
    logger: pino({ level: 'silent' }),
    metrics,
    ready: () => ({ ok: true }),
    bodyTimeoutMs: 1000,
    bodyIdleTimeoutMs: 1000,
    ...extra,
  });
  return { app, metrics, handled: () => handled };
}

const post = (
  app: ReturnType<typeof server>['app'],
  body: string,
  headers: Record<string, string | undefined>,
) =>
  app.inject({
    method: 'POST',
    url: '/webhook/github',
    payload: body,
    headers: Object.fromEntries(
      Object.entries({ 'content-type': 'application/json', 'x-github-event': 'ping', ...headers }).filter(
        ([, v]) => v !== undefined,
      ),
    ) as Record<string, string>,
  });

describe('webhook HTTP layer', () => {
  it('refuses from the headers alone: no signature, a malformed one, an oversized body, no room', async () => {
    const { app, handled } = server(async () => ({ status: 200, body: {} }), {
      maxBufferedBytes: 64,
      smallBodyReserveBytes: 0,
    });
    const body = JSON.stringify({ zen: 'x'.repeat(100) });
    expect((await post(app, body, {})).statusCode).toBe(401);
    expect((await post(app, body, { 'x-hub-signature-256': 'sha256=nothex' })).statusCode).toBe(400);
    const busy = await post(app, body, { 'x-hub-signature-256': sign(body) });
    expect(busy.statusCode).toBe(503);
    expect(busy.headers['retry-after']).toBe('5');
    const small = JSON.stringify({ zen: 'ok' });
    expect((await post(app, small, { 'x-hub-signature-256': sign(small) })).statusCode).toBe(200);
    expect(handled()).toBe(1);
  });

  it('applies the header checks to the route however its path is spelled', async () => {
    const { app, handled } = server(async () => ({ status: 200, body: {} }));
    const res = await app.inject({
      method: 'POST',
      url: '/webhook/%67ithub',
      payload: '{}',
      headers: { 'content-type': 'application/json', 'x-github-event': 'ping' },
    });
    expect(res.statusCode).toBe(401);
    expect(res.json().reason).toMatch(/missing X-Hub-Signature-256/);
    expect(handled()).toBe(0);
  });

  it('refuses a body over the limit from its length', async () => {
    const { app } = server(async () => ({ status: 200, body: {} }), { bodyLimitBytes: 10 });
    const body = JSON.stringify({ zen: 'more than ten bytes' });
    const res = await post(app, body, { 'x-hub-signature-256': sign(body) });
    expect(res.statusCode).toBe(413);
  });

  it('counts a body against the budget until its answer is sent, not only while it arrives', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { app } = server(
      async () => {
        await gate;
        return { status: 200, body: {} };
      },
      { maxBufferedBytes: 64, smallBodyReserveBytes: 0 },
    );
    // Over real HTTP: Node marks a request closed once its body has arrived, which inject does not show.
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/webhook/github`;
    const body = JSON.stringify({ zen: 'x'.repeat(16) }); // 27 bytes
    const send = (delivery: string) =>
      fetch(url, {
        method: 'POST',
        body,
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'ping',
          'x-github-delivery': delivery,
          'x-hub-signature-256': sign(body),
        },
      });
    try {
      const first = send('a');
      const second = send('b');
      await new Promise((r) => setTimeout(r, 100)); // both bodies have arrived; the handler holds them
      expect((await send('c')).status).toBe(503);
      release();
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
      expect((await send('d')).status).toBe(200);
    } finally {
      release();
      await app.close();
    }
  });

  it('answers 503 when storing takes longer than the deadline', async () => {
    const { app } = server(() => new Promise(() => {}), { handleDeadlineMs: 50 });
    const body = JSON.stringify({ zen: 'slow' });
    const res = await post(app, body, { 'x-hub-signature-256': sign(body) });
    expect(res.statusCode).toBe(503);
  });

  it('labels metrics with known event names only', async () => {
    const { app, metrics } = server(async () => ({ status: 202, body: {} }));
    const body = JSON.stringify({});
    await post(app, body, { 'x-github-event': 'made-up-1', 'x-hub-signature-256': sign(body) });
    await post(app, body, { 'x-github-event': 'made-up-2' });
    await post(app, body, { 'x-github-event': 'ping', 'x-hub-signature-256': sign(body) });
    const text = await metrics.registry.metrics();
    expect(text).toContain('codemate_webhook_deliveries_total{event="other",status="202"} 1');
    expect(text).toContain('codemate_webhook_deliveries_total{event="unverified",status="401"} 1');
    expect(text).toContain('codemate_webhook_deliveries_total{event="ping",status="202"} 1');
    expect(text).not.toContain('made-up');
  });

  it('parses JSON and GitHub form bodies, and says what is wrong with anything else', () => {
    expect(parsePayload('{"a":1}', 'application/json; charset=utf-8')).toEqual({ ok: true, value: { a: 1 } });
    expect(parsePayload('payload=%7B%22a%22%3A1%7D', 'application/x-www-form-urlencoded')).toEqual({
      ok: true,
      value: { a: 1 },
    });
    expect(parsePayload('a=1', 'application/x-www-form-urlencoded')).toMatchObject({ ok: false });
    expect(parsePayload('{}', 'text/plain')).toMatchObject({ ok: false, reason: /unsupported content type/ });
    expect(parsePayload('"str"', 'application/json')).toMatchObject({ ok: false, reason: /not an object/ });
    expect(parsePayload('{', 'application/json')).toMatchObject({ ok: false, reason: /not JSON/ });
  });
});

describe('webhook body budget against clients without the secret', () => {
  /** A listening server, and how many webhook requests it has seen the headers of. */
  async function listening(extra: Partial<WebhookServerOptions>) {
    const built = server(async () => ({ status: 200, body: {} }), extra);
    let seen = 0;
    // Runs after the server's own header checks.
    built.app.addHook('onRequest', async () => {
      seen += 1;
    });
    await built.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (built.app.server.address() as net.AddressInfo).port;
    return { ...built, port, url: `http://127.0.0.1:${port}/webhook/github`, seen: () => seen };
  }

  /** Claims a body of `length` bytes with a well-formed but wrong signature, sends `sent` of them, stalls. */
  function stalledClient(port: number, length: number, sent = 0) {
    const socket = net.connect(port, '127.0.0.1');
    socket.write(
      [
        'POST /webhook/github HTTP/1.1',
        'Host: x',
        'Content-Type: application/json',
        'X-GitHub-Event: ping',
        `X-Hub-Signature-256: sha256=${'0'.repeat(64)}`,
        `Content-Length: ${length}`,
        '',
        '',
      ].join('\r\n') + 'x'.repeat(sent),
    );
    const started = Date.now();
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => {});
    const answer = new Promise<{ text: string; ms: number }>((resolve) =>
      socket.on('close', () => resolve({ text, ms: Date.now() - started })),
    );
    return { socket, answer };
  }

  const signed = async (url: string, bytes: number) => {
    const body = JSON.stringify({ zen: 'x'.repeat(bytes - 11) });
    const started = Date.now();
    const res = await fetch(url, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'ping',
        'x-hub-signature-256': sign(body),
      },
    });
    await res.arrayBuffer();
    return { status: res.status, ms: Date.now() - started };
  };

  async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 3000) {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('charges bytes that arrived, not the length claimed: bodies that never come keep no delivery out', async () => {
    // Long timeouts, so that only the accounting is under test.
    const { app, port, url, seen } = await listening({
      bodyLimitBytes: 1000,
      maxBufferedBytes: 2000,
      smallBodyReserveBytes: 0,
      bodyTimeoutMs: 10_000,
      bodyIdleTimeoutMs: 10_000,
    });
    // The reproduction of issue 11: two requests that together claim the whole budget.
    const hostile = [1, 2].map(() => stalledClient(port, 1000));
    try {
      await until('the stalled requests to pass the header checks', () => seen() === 2);
      for (const bytes of [100, 900, 1000]) {
        const answer = await signed(url, bytes);
        expect(answer.status).toBe(200);
        expect(answer.ms).toBeLessThan(1000);
      }
    } finally {
      for (const h of hostile) h.socket.destroy();
      await app.close();
    }
  });

  it('answers 408 to a body that stops flowing, long before the whole-body timeout, and frees its bytes', async () => {
    const { app, port, url } = await listening({
      bodyLimitBytes: 1000,
      maxBufferedBytes: 1000,
      smallBodyReserveBytes: 0,
      bodyTimeoutMs: 10_000,
      bodyIdleTimeoutMs: 300,
    });
    const stalled = stalledClient(port, 1000, 600);
    try {
      const { text, ms } = await Promise.race([
        stalled.answer,
        new Promise<{ text: string; ms: number }>((r) =>
          setTimeout(() => r({ text: '(no answer within 3 s)', ms: 3000 }), 3000),
        ),
      ]);
      expect(text).toMatch(/^HTTP\/1\.1 408/);
      expect(text).toMatch(/connection: close/i);
      expect(text).toContain('the body stalled: no byte arrived for 300 ms');
      expect(ms).toBeLessThan(3000);
      // Its 600 bytes were given back: a body that needs them fits.
      expect((await signed(url, 1000)).status).toBe(200);
    } finally {
      stalled.socket.destroy();
      await app.close();
    }
  });

  it('keeps room for small deliveries when large bodies fill the budget with real bytes and stall', async () => {
    const { app, port, url } = await listening({
      bodyLimitBytes: 64 * 1024,
      maxBufferedBytes: 128 * 1024,
      smallBodyBytes: 4 * 1024,
      smallBodyReserveBytes: 16 * 1024,
      bodyTimeoutMs: 10_000,
      bodyIdleTimeoutMs: 10_000,
    });
    const hostile = [1, 2].map(() => stalledClient(port, 64 * 1024, 64 * 1024 - 1));
    try {
      // Once their bytes have arrived, a large body no longer fits...
      await until(
        'the stalled bodies to fill the budget',
        async () => (await signed(url, 8 * 1024)).status === 503,
      );
      // ...and small ones still do, several at once.
      const answers = await Promise.all([1, 2, 3, 4].map(() => signed(url, 4 * 1024)));
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        expect(answer.ms).toBeLessThan(1000);
      }
    } finally {
      for (const h of hostile) h.socket.destroy();
      await app.close();
    }
  });

  it('refuses with 503 a body whose bytes stop fitting while it arrives, and closes its connection', async () => {
    const { app, port, url, seen } = await listening({
      bodyLimitBytes: 1000,
      maxBufferedBytes: 1000,
      smallBodyReserveBytes: 0,
      bodyTimeoutMs: 10_000,
      bodyIdleTimeoutMs: 10_000,
    });
    // Both pass the header checks while nothing has arrived; then the first one's bytes take the room.
    const [first, second] = [stalledClient(port, 1000), stalledClient(port, 1000)];
    try {
      await until('both to pass the header checks', () => seen() === 2);
      first!.socket.write('x'.repeat(700));
      await until('the first body to be charged', async () => (await signed(url, 400)).status === 503);
      second!.socket.write('x'.repeat(400));
      const { text } = await second!.answer;
      expect(text).toMatch(/^HTTP\/1\.1 503/);
      expect(text).toMatch(/retry-after: 5/i);
      expect(text).toMatch(/connection: close/i);
      expect(text).toContain('too many large deliveries at once');
    } finally {
      first!.socket.destroy();
      second!.socket.destroy();
      await app.close();
    }
  });
});
