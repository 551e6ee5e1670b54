/**
 * The webhook's HTTP layer on its own: what is refused from the headers before any body is read, the
 * answer when storing takes too long, and bounded metric labels. Routing and storage are tested against
 * the real apiserver in test/integration/webhook.test.ts.
 */
import { createHmac } from 'node:crypto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { SignatureVerifier } from '../../../src/clients/webhooks.js';
import { webhookMetrics } from '../../../src/observability/metrics.js';
import { DeliveryLog, type Answer } from '../../../src/webhook/deliveries.js';
import { buildWebhookServer, parsePayload } from '../../../src/webhook/server.js';

const secret = 'unit-secret';
const sign = (body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

function server(
  handle: () => Promise<Answer>,
  extra: { maxBufferedBytes?: number; handleDeadlineMs?: number; bodyLimitBytes?: number } = {},
) {
  const metrics = webhookMetrics();
  let handled = 0;
  const app = buildWebhookServer({
    verifier: new SignatureVerifier([secret]),
    deliveries: new DeliveryLog(10),
    handle: async () => {
      handled += 1;
      return handle();
    },
    answerError: () => ({ status: 503, body: { status: 'unavailable', reason: 'deadline' } }),
    logger: pino({ level: 'silent' }),
    metrics,
    ready: () => ({ ok: true }),
    bodyTimeoutMs: 1000,
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
    const { app, handled } = server(async () => ({ status: 200, body: {} }), { maxBufferedBytes: 64 });
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
      { maxBufferedBytes: 64 },
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
