#!/usr/bin/env node
// The floor for bench/webhook.mjs: the least a GitHub webhook receiver can do and still be correct. It
// keeps the raw body, checks X-Hub-Signature-256 in constant time, parses the JSON and answers 202,
// with no routing and no storage. Run as a child process (not in the benchmark's own event loop) so it
// stands where `codemate webhook` stands: its own process, sharing the machine with the load generator.
// It listens on a free loopback port and sends { port } to its parent over IPC.
import { createHmac, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';

const secret = process.env.GITHUB_WEBHOOK_SECRET;
if (!secret || !process.send) throw new Error('run by bench/webhook.mjs, with GITHUB_WEBHOOK_SECRET set');

const app = Fastify({ logger: false, bodyLimit: 25 * 1024 * 1024 });
// The signature covers the bytes as sent, so no parser may run before it is checked.
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

function signatureMatches(raw, header) {
  if (typeof header !== 'string' || !/^sha256=[0-9a-f]{64}$/.test(header)) return false;
  const expected = createHmac('sha256', secret).update(raw).digest();
  return timingSafeEqual(expected, Buffer.from(header.slice('sha256='.length), 'hex'));
}

app.post('/webhook/github', async (request, reply) => {
  if (!signatureMatches(request.body, request.headers['x-hub-signature-256'])) {
    return reply.code(401).send({ status: 'refused' });
  }
  const payload = JSON.parse(request.body.toString('utf8'));
  return reply.code(202).send({ status: 'accepted', action: payload.action });
});

await app.listen({ port: 0, host: '127.0.0.1' });
process.send({ port: app.server.address().port });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
