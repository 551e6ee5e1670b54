import { afterEach, describe, expect, it } from 'vitest';
import { startModelServer, userTextsOf, type ModelServer } from '../../../src/sandbox/modelServer.js';

let server: ModelServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const body = (text: string, extra: object = {}) => ({
  model: 'claude-test',
  max_tokens: 100,
  messages: [
    { role: 'user', content: 'earlier' },
    { role: 'assistant', content: [{ type: 'text', text: 'ok' }] },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 't1', content: 'not user text' },
        { type: 'text', text },
      ],
    },
  ],
  tools: [{ name: 'Bash' }],
  ...extra,
});

async function post(path: string, payload: object): Promise<Response> {
  return fetch(`${server!.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
}

/** SSE frames as [event, data]. */
function frames(text: string): Array<[string, Record<string, unknown>]> {
  return text
    .trim()
    .split('\n\n')
    .map((frame) => {
      const event = /^event: (.*)$/m.exec(frame)![1]!;
      const data = JSON.parse(/^data: (.*)$/m.exec(frame)![1]!) as Record<string, unknown>;
      return [event, data];
    });
}

describe('local model server', () => {
  it('streams the Messages API events in order, each event named as its data type', async () => {
    server = await startModelServer();
    const res = await post('/v1/messages?beta=true', body('hello TOKEN-1', { stream: true }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const events = frames(await res.text());
    const names = events.map(([e]) => e);
    expect(names[0]).toBe('message_start');
    expect(names.slice(1, 3)).toEqual(['content_block_start', 'ping']);
    expect(names.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    for (const [event, data] of events) expect(data.type).toBe(event);
    const text = events
      .filter(([e]) => e === 'content_block_delta')
      .map(([, d]) => (d.delta as { text: string }).text)
      .join('');
    expect(text).toBe('Acknowledged request 1: 1 text block(s), 13 characters.');
    expect((events.at(-2)![1].delta as { stop_reason: string }).stop_reason).toBe('end_turn');
  });

  it('answers without streaming, and counts tokens without recording', async () => {
    server = await startModelServer();
    const res = await post('/v1/messages', body('plain'));
    const message = (await res.json()) as {
      type: string;
      content: Array<{ text: string }>;
      stop_reason: string;
    };
    expect(message).toMatchObject({ type: 'message', stop_reason: 'end_turn' });
    expect(message.content[0]!.text).toContain('request 1');
    const count = (await (await post('/v1/messages/count_tokens', body('x'))).json()) as {
      input_tokens: number;
    };
    expect(count.input_tokens).toBeGreaterThan(0);
    expect(server.requests).toHaveLength(1);
  });

  it('records every request with the new user text, and serves the log at /_requests', async () => {
    server = await startModelServer();
    await post('/v1/messages', body('first'));
    await post('/v1/messages', { ...body('second'), tools: undefined });
    const log = (await (await fetch(`${server.url}/_requests`)).json()) as Array<{
      seq: number;
      userTexts: string[];
      tools: number;
    }>;
    expect(log.map((r) => [r.seq, r.userTexts, r.tools])).toEqual([
      [1, ['first'], 1],
      [2, ['second'], 0],
    ]);
  });

  it('streams slowly when told to', async () => {
    server = await startModelServer();
    const set = await fetch(`${server.url}/_config`, {
      method: 'PUT',
      body: JSON.stringify({ chunkDelayMs: 100, chunks: 4 }),
    });
    expect(await set.json()).toEqual({ chunkDelayMs: 100, chunks: 4 });
    const started = Date.now();
    const res = await post('/v1/messages', body('slow', { stream: true }));
    await res.text();
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    const bad = await fetch(`${server.url}/_config`, { method: 'PUT', body: JSON.stringify({ chunks: 0 }) });
    expect(bad.status).toBe(400);
  });

  it('refuses what it does not serve, in the API error shape', async () => {
    server = await startModelServer();
    const missing = await fetch(`${server.url}/v1/complete`, { method: 'POST', body: '{}' });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    const invalid = await fetch(`${server.url}/v1/messages`, { method: 'POST', body: 'not json' });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
  });

  it('takes the user text from a string or from text blocks only', () => {
    expect(userTextsOf({ messages: [{ role: 'user', content: 'a' }] })).toEqual(['a']);
    expect(userTextsOf({ messages: [{ role: 'assistant', content: 'a' }] })).toEqual([]);
  });
});
