/**
 * A local stand-in for Anthropic's Messages API, for the sandbox and the tests: the real Claude Code in a
 * session talks to it through ANTHROPIC_BASE_URL, with no key and no network.
 *
 * - `POST /v1/messages`, streaming (SSE: message_start, content_block_start, ping, content_block_delta,
 *   content_block_stop, message_delta, message_stop) and not, and `POST /v1/messages/count_tokens`.
 * - Every answer is a short deterministic text that names what it received, so a transcript is readable.
 * - Every request is recorded; `GET /_requests` serves the log as JSON, so a test can assert exactly which
 *   text reached the model, how many times, and in which request.
 * - `PUT /_config` sets how slowly it streams ({"chunkDelayMs": 200, "chunks": 10}), to hold a turn open.
 * - Every answer reports `usage` as the API does (input, output, cache read and cache creation tokens),
 *   derived from the sizes of the request and the answer, so a session's token count is predictable.
 * - A prompt holding `askUserToken` is answered with one AskUserQuestion tool call: the TUI then shows a
 *   dialog that waits for a person, which is how the tests make a session blocked.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ModelRequest {
  /** 1, 2, ... in arrival order. */
  seq: number;
  at: string;
  path: string;
  model: string | undefined;
  stream: boolean;
  /** Tools offered: the agent's own turns offer them; side requests (titles, summaries) do not. */
  tools: number;
  /**
   * The text blocks of the last user message: what is new in this request. Prompts queued together
   * arrive as several blocks of one request.
   */
  userTexts: string[];
  /** The raw request body, for anything else a test wants to read. */
  body: unknown;
  /** The usage the answer reported (usageFor). */
  usage?: ReturnType<typeof usageFor>;
}

export interface ModelServerConfig {
  /** Pause between streamed chunks. */
  chunkDelayMs: number;
  /** How many chunks the answer is streamed in. */
  chunks: number;
}

export interface ModelServer {
  readonly url: string;
  readonly port: number;
  readonly requests: readonly ModelRequest[];
  configure(config: Partial<ModelServerConfig>): void;
  close(): Promise<void>;
}

/** A prompt holding this is answered with an AskUserQuestion tool call (a dialog for a person). */
export const askUserToken = '[[codemate-model:ask-user]]';

/** The most requests kept; older ones are dropped from the log. */
const maxRecorded = 10_000;
const maxBodyBytes = 64 * 1024 * 1024;

type Block = { type?: string; text?: string; content?: unknown };
type Message = { role?: string; content?: string | Block[] };
type MessagesBody = { model?: string; stream?: boolean; messages?: Message[]; tools?: unknown[] };

/** The text blocks of the last user message; tool results are not user text. */
export function userTextsOf(body: MessagesBody): string[] {
  const last = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user');
  if (!last) return [];
  if (typeof last.content === 'string') return [last.content];
  return (last.content ?? [])
    .filter((b) => b.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text!);
}

/** The deterministic answer to one request. */
export function answerFor(request: Pick<ModelRequest, 'seq' | 'userTexts'>): string {
  const chars = request.userTexts.reduce((n, t) => n + t.length, 0);
  return `Acknowledged request ${request.seq}: ${request.userTexts.length} text block(s), ${chars} characters.`;
}

function estimateTokens(body: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(body ?? '').length / 4));
}

/**
 * The usage an answer reports, as the API does: the request's tokens (about 4 characters each) split into
 * a cache read (all but the last message, which a real prompt cache would hold) and new input, and the
 * answer's tokens as output. Deterministic, so a test knows what a turn costs.
 */
export function usageFor(
  messages: unknown[],
  answer: unknown,
): {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
} {
  const total = estimateTokens(messages);
  const cached = messages.length > 1 ? Math.min(total - 1, estimateTokens(messages.slice(0, -1))) : 0;
  return {
    input_tokens: total - cached,
    output_tokens: estimateTokens(answer),
    cache_read_input_tokens: cached,
    cache_creation_input_tokens: 0,
  };
}

/** The tool call that asks the person at the session a question (Claude Code shows it as a dialog). */
const askUserCall = {
  type: 'tool_use',
  name: 'AskUserQuestion',
  input: {
    questions: [
      {
        question: 'Which way should I go on?',
        header: 'Direction',
        multiSelect: false,
        options: [
          { label: 'Carry on', description: 'Continue with the current plan.' },
          { label: 'Stop', description: 'Stop here and wait.' },
        ],
      },
    ],
  },
} as const;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function apiError(res: ServerResponse, status: number, type: string, message: string): void {
  json(res, status, { type: 'error', error: { type, message } });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function chunksOf(text: string, n: number): string[] {
  const size = Math.max(1, Math.ceil(text.length / Math.max(1, n)));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

export async function startModelServer(
  options: { port?: number; host?: string; config?: Partial<ModelServerConfig> } = {},
): Promise<ModelServer> {
  const requests: ModelRequest[] = [];
  let seq = 0;
  const config: ModelServerConfig = { chunkDelayMs: 0, chunks: 3, ...options.config };

  const messages = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    let body: MessagesBody;
    try {
      body = JSON.parse(await readBody(req)) as MessagesBody;
    } catch (error) {
      return apiError(
        res,
        400,
        'invalid_request_error',
        `request body is not JSON: ${(error as Error).message}`,
      );
    }
    if (!Array.isArray(body.messages)) {
      return apiError(res, 400, 'invalid_request_error', 'messages: field required');
    }
    if (path.endsWith('/count_tokens'))
      return json(res, 200, { input_tokens: estimateTokens(body.messages) });
    const record: ModelRequest = {
      seq: ++seq,
      at: new Date().toISOString(),
      path,
      model: body.model,
      stream: body.stream === true,
      tools: body.tools?.length ?? 0,
      userTexts: userTextsOf(body),
      body,
    };
    requests.push(record);
    if (requests.length > maxRecorded) requests.shift();
    const text = answerFor(record);
    const id = `msg_local_${String(record.seq).padStart(6, '0')}`;
    const model = body.model ?? 'claude-local';
    const ask =
      record.tools > 0 && record.userTexts.some((t) => t.includes(askUserToken))
        ? { ...askUserCall, id: `toolu_local_${String(record.seq).padStart(6, '0')}` }
        : undefined;
    const usage = usageFor(body.messages, ask ? [text, ask] : text);
    record.usage = usage;
    const stopReason = ask ? 'tool_use' : 'end_turn';
    if (!record.stream) {
      return json(res, 200, {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [{ type: 'text', text }, ...(ask ? [ask] : [])],
        stop_reason: stopReason,
        stop_sequence: null,
        usage,
      });
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'request-id': `req_local_${record.seq}`,
    });
    const send = (event: string, data: object) =>
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('message_start', {
      type: 'message_start',
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1 },
      },
    });
    send('content_block_start', {
      type: 'content_block_start',
      index: 0,
      content_block: { type: 'text', text: '' },
    });
    send('ping', { type: 'ping' });
    for (const piece of chunksOf(text, config.chunks)) {
      if (config.chunkDelayMs > 0) await sleep(config.chunkDelayMs);
      if (res.destroyed) return;
      send('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text: piece },
      });
    }
    send('content_block_stop', { type: 'content_block_stop', index: 0 });
    if (ask) {
      send('content_block_start', {
        type: 'content_block_start',
        index: 1,
        content_block: { type: 'tool_use', id: ask.id, name: ask.name, input: {} },
      });
      send('content_block_delta', {
        type: 'content_block_delta',
        index: 1,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(ask.input) },
      });
      send('content_block_stop', { type: 'content_block_stop', index: 1 });
    }
    send('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    });
    send('message_stop', { type: 'message_stop' });
    res.end();
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = `${req.method} ${path}`;
    const handle = async () => {
      switch (route) {
        case 'POST /v1/messages':
        case 'POST /v1/messages/count_tokens':
          return messages(req, res, path);
        case 'GET /_requests':
          return json(res, 200, requests);
        case 'GET /_config':
          return json(res, 200, config);
        case 'PUT /_config': {
          const update = JSON.parse((await readBody(req)) || '{}') as Partial<ModelServerConfig>;
          for (const key of ['chunkDelayMs', 'chunks'] as const) {
            const value = update[key];
            if (value !== undefined && (!Number.isInteger(value) || value < (key === 'chunks' ? 1 : 0))) {
              return apiError(res, 400, 'invalid_request_error', `${key} must be a whole number`);
            }
            if (value !== undefined) config[key] = value;
          }
          return json(res, 200, config);
        }
        case 'GET /healthz':
          return json(res, 200, { ok: true });
        default:
          return apiError(res, 404, 'not_found_error', `${route} is not served by the local model server`);
      }
    };
    handle().catch((error: unknown) => {
      if (!res.headersSent) apiError(res, 500, 'api_error', (error as Error).message);
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    port,
    requests,
    configure: (update) => Object.assign(config, update),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `codemate dev model-server`: serves until SIGTERM or SIGINT. */
export async function runModelServer(options: { port: number; host: string }): Promise<void> {
  const server = await startModelServer({ port: options.port, host: options.host });
  process.stderr.write(`local model server listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  await server.close();
}
