/**
 * The fault suite's harness: a sandbox whose components can be killed with SIGKILL and brought back with
 * `codemate dev up`, one function that says what reached the sessions (`received`: the sandbox's model
 * server log), a ledger that counts each message's unique token in it, a watch of every message's status,
 * and the per-case report.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { pollRequestedAnnotation, type CodeMate } from '../../src/api/codemate.js';
import type { CodeMateMessage } from '../../src/api/message.js';
import { supervisedInformer, type Informer } from '../../src/clients/informer.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import type { ComponentName } from '../../src/sandbox/components.js';
import { identityKubeconfig } from '../../src/sandbox/identities.js';
import type { ModelRequest } from '../../src/sandbox/modelServer.js';
import { freePort } from '../../src/clients/ports.js';
import { isAlive } from '../../src/clients/processes.js';
import { cliPath, runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub, RequestRecord } from '../helpers/fakeGitHub.js';
import {
  codemateObject,
  httpGet,
  secretObject,
  spawnServer,
  type ServerProcess,
} from '../helpers/operator.js';
import { startGitHubSandbox, type GitHubSandbox } from '../helpers/sandbox.js';
import { modelServerUrl } from '../helpers/modelLog.js';
import { issueCommentOnPullRequest } from '../helpers/webhook.js';

const run = promisify(execFile);

export type Message = CodeMateMessage & KubeObject;
export type CM = CodeMate & KubeObject;
type Pod = KubeObject & {
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
};

export const session = { login: 'codemate-bot', id: 900 };
export const alice = { login: 'alice', id: 901 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A GitHub request as the fake answered it, with when (the fake itself keeps no times). */
export type TimedRequest = RequestRecord & { at: number };

export class FaultSandbox {
  /** Every request the fake GitHub answered, in order, with its time. */
  readonly requests: TimedRequest[] = [];

  private constructor(
    readonly base: GitHubSandbox,
    readonly binDir: string,
    /** What `dev up` got the first time; a restart must pass the same (the fake GitHub, the git rewrite). */
    readonly upEnv: Record<string, string>,
    /** The sandbox's local model server (component `model-server`), which sessions' Claude Code calls. */
    readonly modelServer: string,
  ) {
    const records = base.gh.requests;
    const push = records.push.bind(records);
    records.push = (...items: RequestRecord[]) => {
      for (const item of items) this.requests.push({ ...item, at: Date.now() });
      return push(...items);
    };
  }

  static async start(binDir: string, extraEnv: Record<string, string>): Promise<FaultSandbox> {
    const base = await startGitHubSandbox(binDir, session, extraEnv);
    try {
      // startGitHubSandbox keeps the environment of its `dev up` to itself; every component inherited it.
      const pid = await pidOf(base.stateDir, 'codemate-operator');
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const upEnv: Record<string, string> = { CODEMATE_BIN_DIR: binDir };
      for (const entry of environ) {
        const eq = entry.indexOf('=');
        const key = entry.slice(0, eq);
        if (key === 'GITHUB_API_URL' || (key.startsWith('CODEMATE_') && key !== 'CODEMATE_STATE_DIR'))
          upEnv[key] = entry.slice(eq + 1);
      }
      return new FaultSandbox(base, binDir, upEnv, await modelServerUrl(base.stateDir));
    } catch (error) {
      await base.stop();
      throw error;
    }
  }

  get gh(): FakeGitHub {
    return this.base.gh;
  }
  get kube(): Kube {
    return this.base.kube;
  }
  get stateDir(): string {
    return this.base.stateDir;
  }
  get kubeconfig(): string {
    return path.join(this.base.stateDir, 'kubeconfig');
  }
  get webhookUrl(): string {
    return this.base.env.CODEMATE_WEBHOOK_URL!;
  }
  async webhookSecret(): Promise<string> {
    return (await readFile(this.base.env.GITHUB_WEBHOOK_SECRET_FILE!, 'utf8')).trim();
  }

  pid(component: ComponentName): Promise<number> {
    return pidOf(this.stateDir, component);
  }

  /** SIGKILL to one sandbox process; resolves once it is gone. */
  async kill9(component: ComponentName): Promise<number> {
    const pid = await this.pid(component);
    process.kill(pid, 'SIGKILL');
    await eventually(
      async () => isAlive(pid),
      (alive) => !alive,
      { what: `${component} (pid ${pid}) gone`, intervalMs: 20 },
    );
    return pid;
  }

  /** `codemate dev up` on the existing state directory: it starts what is not running. */
  async devUp(): Promise<number> {
    const started = Date.now();
    const up = await runCli(['dev', 'up', '--state-dir', this.stateDir], {
      env: this.upEnv,
      timeoutMs: 240_000,
    });
    if (up.code !== 0) throw new Error(`codemate dev up failed (${up.code}): ${up.stderr.slice(-2000)}`);
    return Date.now() - started;
  }

  /** `kubectl exec POD -- bash -c SCRIPT`, as a user would. */
  async exec(namespace: string, pod: string, script: string): Promise<string> {
    const { stdout } = await run(
      path.join(this.binDir, 'kubectl'),
      ['--kubeconfig', this.kubeconfig, '-n', namespace, 'exec', pod, '--', 'bash', '-c', script],
      { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 },
    );
    return stdout;
  }

  /** A namespace with the session's secrets. */
  async namespace(name: string): Promise<string> {
    await this.kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    await this.kube.create(secretObject(name, 'github-token', { token: 'ghp-session-token' }));
    await this.kube.create(secretObject(name, 'anthropic-key', { token: 'x' }));
    return name;
  }

  /** A CodeMate following its own pull request o/r#`pullRequest` (each case uses distinct numbers). */
  async codemate(
    namespace: string,
    name: string,
    pullRequest: number,
    intervalSeconds: number,
  ): Promise<void> {
    await this.base.addPull(pullRequest, `fault-${pullRequest}`);
    await this.kube.create(
      codemateObject(namespace, name, {
        repository: { url: 'https://github.com/o/r.git', branch: `fault-${pullRequest}`, pullRequest },
        monitoring: { intervalSeconds },
      }),
    );
  }

  getCodeMate(namespace: string, name: string): Promise<CM> {
    return this.kube.get<CM>('codemate.io/v1alpha1', 'CodeMate', name, namespace);
  }

  /** Waits until each CodeMate runs its session and has polled GitHub once. */
  async running(namespace: string, names: string[], timeoutMs = 120_000): Promise<CM[]> {
    return eventually(
      () => Promise.all(names.map((n) => this.getCodeMate(namespace, n))),
      (cms) => cms.every((cm) => cm.status?.phase === 'Running' && !!cm.status.podName && !!cm.status.github),
      {
        what: `CodeMates ${names.join(', ')} Running`,
        timeoutMs,
        intervalMs: 500,
        describe: (cms) =>
          JSON.stringify(cms.map((cm) => [cm.metadata.name, cm.status?.phase, cm.status?.message])),
      },
    );
  }

  async podUid(namespace: string, pod: string): Promise<string> {
    return (await this.kube.get<Pod>('v1', 'Pod', pod, namespace)).metadata.uid!;
  }

  /** True when every CodeMate is Running and its pod Ready. */
  async allRunning(namespace: string, names: string[]): Promise<boolean> {
    return (await this.notRunning(namespace, names)).length === 0;
  }

  /** What keeps each CodeMate that is not Running with its pod Ready; empty when all are. */
  async notRunning(namespace: string, names: string[]): Promise<string[]> {
    const cms = await Promise.all(names.map((n) => this.getCodeMate(namespace, n)));
    const why: string[] = [];
    for (const cm of cms) {
      const name = cm.metadata.name;
      if (cm.status?.phase !== 'Running' || !cm.status.podName) {
        why.push(
          `${name} ${cm.status?.phase ?? 'without a phase'}: ${(cm.status?.message ?? '').slice(0, 200)}`,
        );
        continue;
      }
      const pod = await this.kube.get<Pod>('v1', 'Pod', cm.status.podName, namespace);
      const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
      if (ready?.status !== 'True')
        why.push(`${name}'s pod ${pod.status?.phase ?? ''} with Ready=${ready?.status ?? 'unset'}`);
    }
    return why;
  }

  /** CLI-sourced messages, one per token, created in order; their names do not contain the token. */
  async cliMessages(namespace: string, codemate: string, tokens: string[]): Promise<string[]> {
    const cm = await this.getCodeMate(namespace, codemate);
    const names: string[] = [];
    for (const token of tokens) {
      const name = `${codemate}-cli-${token.split('-').pop()}`;
      await this.kube.create({
        apiVersion: 'codemate.io/v1alpha1',
        kind: 'CodeMateMessage',
        metadata: {
          name,
          namespace,
          ownerReferences: [
            {
              apiVersion: 'codemate.io/v1alpha1',
              kind: 'CodeMate',
              name: codemate,
              uid: cm.metadata.uid!,
              controller: true,
            },
          ],
        },
        spec: {
          codemate,
          source: { type: 'cli', author: 'fault-suite', createdAt: new Date().toISOString() },
          body: bodyOf(token),
        },
      } as KubeObject);
      names.push(name);
    }
    return names;
  }

  /** Asks the CodeMate's poller to poll now (what a pull request webhook event does). */
  async requestPoll(namespace: string, name: string): Promise<void> {
    await this.kube.mergePatch({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: { name, namespace, annotations: { [pollRequestedAnnotation]: new Date().toISOString() } },
    });
  }

  /** Waits for `count` more polls of one CodeMate (status.lastMonitorCheck changing). */
  async polls(namespace: string, name: string, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const before = (await this.getCodeMate(namespace, name)).status?.lastMonitorCheck;
      await eventually(
        () => this.getCodeMate(namespace, name),
        (cm) => cm.status?.lastMonitorCheck !== before,
        { what: `poll ${i + 1} of ${namespace}/${name}`, timeoutMs: 30_000, intervalMs: 250 },
      );
    }
  }

  /** Every request the sandbox's model server logged (`GET /_requests`), in order. */
  async modelLog(): Promise<ModelRequest[]> {
    const res = await fetch(`${this.modelServer}/_requests`);
    if (!res.ok) throw new Error(`GET ${this.modelServer}/_requests answered ${res.status}`);
    return (await res.json()) as ModelRequest[];
  }

  /**
   * Resolves the moment the session in `pod` has acknowledged `count` more messages, with the last one:
   * its receipt `acks/<id>` appears, written by the UserPromptSubmit hook when the TUI takes the prompt
   * (after the paste and Enter, before codemate-inject exits and so before the operator can write
   * Delivered). The local pod runtime keeps the pod's state directory on this host, in
   * pods/<uid>/ws/.codemate; it is polled every 5 ms. Only to time a fault to that moment: what arrived is
   * read from the model server (`received`), and the real TUI calls it only later, when the message
   * reads Delivered already.
   */
  async receipts(
    namespace: string,
    pod: string,
    count: number,
    timeoutMs: number,
  ): Promise<{ id: string; at: number }> {
    const uid = await this.podUid(namespace, pod);
    const dir = path.join(this.stateDir, 'pods', uid.slice(0, 13), 'ws', '.codemate', 'acks');
    const list = () => readdir(dir).catch(() => [] as string[]);
    const seen = new Set(await list());
    const deadline = Date.now() + timeoutMs;
    for (let n = 0; ;) {
      for (const id of await list()) {
        if (seen.has(id)) continue;
        seen.add(id);
        if (++n === count) return { id, at: Date.now() };
      }
      if (Date.now() > deadline)
        throw new Error(`${n} of ${count} receipts in ${dir} within ${timeoutMs} ms`);
      await sleep(5);
    }
  }

  /** A second operator replica, as the sandbox runs its own but with leader election on `lease`. */
  async operatorReplica(lease: string): Promise<ServerProcess & { healthPort: number }> {
    const healthPort = await freePort();
    const server = spawnServer(
      [
        cliPath,
        'operator',
        `--kubeconfig=${identityKubeconfig(this.stateDir, 'codemate-operator')}`,
        `--health-port=${healthPort}`,
        // The sandbox operator's image: another one would roll every session pod.
        '--session-image=codemate-session:dev',
        `--lease-name=${lease}`,
      ],
      { ...this.upEnv, POD_NAME: '', CODEMATE_LEADER_ELECT: '', LOG_LEVEL: 'info' },
      healthPort,
    );
    await eventually(
      () => httpGet(`http://127.0.0.1:${healthPort}/healthz`),
      (r) => r.status === 200,
      { what: 'operator replica alive', timeoutMs: 60_000, describe: () => server.logs().slice(-1000) },
    );
    return { ...server, healthPort };
  }

  stop(): Promise<void> {
    return this.base.stop();
  }
}

async function pidOf(stateDir: string, component: ComponentName): Promise<number> {
  const text = await readFile(path.join(stateDir, 'run', `${component}.pid`), 'utf8');
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid for ${component} in ${stateDir}`);
  return pid;
}

/** Each message body carries one token, `fault-c<case>-<n>`, found by this pattern and nothing else. */
export const tokenPattern = /fault-c\d+-\d+(?!\d)/g;
export const bodyOf = (token: string) => `Fault suite message ${token}: please acknowledge.`;

/** The prompts that reached the agent: the text blocks of the last user message of its own turns. */
export function agentPrompts(requests: readonly ModelRequest[]): string[] {
  return requests.filter((r) => r.tools > 0).flatMap((r) => r.userTexts);
}

/**
 * Every prompt that reached the sessions' Claude Code, in order, from the sandbox's one model server
 * log. Only the agent's own turns count: those offer tools; a side request, which offers none, may
 * repeat a prompt. Prompts queued together in the TUI arrive as several blocks of one request: each
 * block is an entry. A token's every occurrence counts, so one pasted twice, into one prompt or two,
 * shows twice.
 */
export async function received(sandbox: FaultSandbox): Promise<string[]> {
  return agentPrompts(await sandbox.modelLog());
}

export interface Tally {
  sent: number;
  delivered: number;
  duplicated: number;
  lost: number;
  /** Tokens received more than once (within one prompt or across requests), with their counts. */
  duplicates: Record<string, number>;
  missing: string[];
}

/**
 * What reached the sessions: the model server's log, read again on every `read`. Tokens are unique per
 * message and the log is the sandbox's one log, so the tally needs nothing per pod or per session.
 */
export class Ledger {
  private prompts: string[] = [];

  constructor(private readonly sandbox: FaultSandbox) {}

  async read(): Promise<void> {
    const prompts = await received(this.sandbox);
    // The log lives in the model server's memory: a shorter one means that it restarted and lost what
    // came before.
    if (prompts.length < this.prompts.length)
      throw new Error(
        `the model server's log went from ${this.prompts.length} prompts to ${prompts.length}: it restarted, and what reached the sessions before is unknown`,
      );
    this.prompts = prompts;
  }

  /** How often each token was received, as of the last `read`. */
  counts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const prompt of this.prompts)
      for (const token of prompt.match(tokenPattern) ?? []) counts.set(token, (counts.get(token) ?? 0) + 1);
    return counts;
  }

  tally(sent: string[]): Tally {
    const counts = this.counts();
    const tally: Tally = {
      sent: sent.length,
      delivered: 0,
      duplicated: 0,
      lost: 0,
      duplicates: {},
      missing: [],
    };
    for (const token of sent) {
      const n = counts.get(token) ?? 0;
      if (n === 0) {
        tally.lost += 1;
        tally.missing.push(token);
      } else tally.delivered += 1;
      if (n > 1) {
        tally.duplicated += 1;
        tally.duplicates[token] = n;
      }
    }
    return tally;
  }
}

export interface MessageRecord {
  namespace: string;
  name: string;
  codemate: string;
  phase?: string | undefined;
  reason?: string | undefined;
  /** The most status.attempts ever seen. */
  attempts: number;
  delivered: boolean;
  deleted: boolean;
  /** Every uid this name had: more than one means it was created again. */
  uids: string[];
  firstSeenAt: number;
}

/** Watches every CodeMateMessage: the most attempts, whether it was ever Delivered, re-creations. */
export class MessageWatch {
  readonly records = new Map<string, MessageRecord>();
  private readonly informer: Informer<Message>;

  constructor(kube: Kube) {
    this.informer = supervisedInformer<Message>(kube, {
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMateMessage',
      plural: 'codematemessages',
      maxBackoffMs: 2000,
      onEvent: (event, m) => {
        const key = `${m.metadata.namespace}/${m.metadata.name}`;
        const record = this.records.get(key) ?? {
          namespace: m.metadata.namespace,
          name: m.metadata.name,
          codemate: m.spec.codemate,
          attempts: 0,
          delivered: false,
          deleted: false,
          uids: [],
          firstSeenAt: Date.now(),
        };
        if (m.metadata.uid && !record.uids.includes(m.metadata.uid)) record.uids.push(m.metadata.uid);
        record.phase = m.status?.phase;
        record.reason = m.status?.reason;
        record.attempts = Math.max(record.attempts, m.status?.attempts ?? 0);
        record.delivered ||= m.status?.phase === 'Delivered';
        record.deleted = event === 'delete';
        this.records.set(key, record);
      },
    });
  }

  start(): Promise<void> {
    return this.informer.start();
  }
  stop(): Promise<void> {
    return this.informer.stop();
  }

  of(namespace: string): MessageRecord[] {
    return [...this.records.values()].filter((r) => r.namespace === namespace);
  }

  get(namespace: string, name: string): MessageRecord | undefined {
    return this.records.get(`${namespace}/${name}`);
  }
}

export interface CaseRow {
  case: number;
  title: string;
  sent: number;
  delivered: number;
  duplicated: number;
  lost: number;
  maxAttempts: number;
  /** From the end of the fault until every message had arrived (see each case's note). */
  recoveryMs: number | null;
  wallMs: number;
  notes: string[];
  duplicates?: Record<string, number>;
  missing?: string[];
  error?: string;
}

/** What a case body fills in; the runner turns it into the row, also when the case fails. */
export class CaseContext {
  readonly tokens: string[] = [];
  readonly notes: string[] = [];
  recoveryMs: number | null = null;
  private next = 1;

  constructor(
    readonly number: number,
    readonly namespace: string,
  ) {}

  /** `count` fresh tokens, recorded as sent. */
  send(count: number): string[] {
    const tokens = Array.from({ length: count }, () => `fault-c${this.number}-${this.next++}`);
    this.tokens.push(...tokens);
    return tokens;
  }

  note(text: string): void {
    this.notes.push(text);
  }
}

export class FaultReport {
  readonly rows: CaseRow[] = [];

  constructor(
    private readonly sandbox: () => FaultSandbox,
    private readonly ledger: () => Ledger,
    private readonly watch: () => MessageWatch,
  ) {}

  /**
   * Runs one case in its own namespace and records its row, whatever happens; the row counts what the
   * model server had received by the end. Rethrows the case's error.
   */
  async run(number: number, title: string, body: (c: CaseContext) => Promise<void>): Promise<CaseRow> {
    const sandbox = this.sandbox();
    const c = new CaseContext(number, `fault-c${number}`);
    const started = Date.now();
    let error: unknown;
    try {
      await sandbox.namespace(c.namespace);
      await body(c);
    } catch (e) {
      error = e;
    }
    await this.ledger()
      .read()
      .catch(() => undefined);
    const tally = this.ledger().tally(c.tokens);
    const records = this.watch().of(c.namespace);
    const row: CaseRow = {
      case: number,
      title,
      sent: tally.sent,
      delivered: tally.delivered,
      duplicated: tally.duplicated,
      lost: tally.lost,
      maxAttempts: Math.max(0, ...records.map((r) => r.attempts)),
      recoveryMs: c.recoveryMs,
      wallMs: Date.now() - started,
      notes: c.notes,
      ...(tally.duplicated ? { duplicates: tally.duplicates } : {}),
      ...(tally.lost ? { missing: tally.missing } : {}),
      ...(error ? { error: String(error instanceof Error ? error.message : error).slice(0, 2000) } : {}),
    };
    this.rows.push(row);
    process.stderr.write(`[fault] ${JSON.stringify(row)}\n`);
    // Free the case's sessions for the next one.
    await sandbox.kube.delete('v1', 'Namespace', c.namespace).catch(() => undefined);
    if (error) throw error;
    return row;
  }

  table(): string {
    const header = ['case', 'sent', 'delivered', 'duplicated', 'lost', 'max attempts', 'recovery', 'wall'];
    const lines = [...this.rows]
      .sort((a, b) => a.case - b.case)
      .map((r) => [
        `${r.case} ${r.title}${r.error ? ' (FAILED)' : ''}`,
        String(r.sent),
        String(r.delivered),
        String(r.duplicated),
        String(r.lost),
        String(r.maxAttempts),
        r.recoveryMs === null ? '-' : `${(r.recoveryMs / 1000).toFixed(1)} s`,
        `${(r.wallMs / 1000).toFixed(0)} s`,
      ]);
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
    const format = (cells: string[]) =>
      cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
    const notes = [...this.rows]
      .sort((a, b) => a.case - b.case)
      .flatMap((r) => [
        ...r.notes.map((n) => `  ${r.case}: ${n}`),
        ...(r.error ? [`  ${r.case}: error: ${r.error.split('\n')[0]}`] : []),
      ]);
    return [format(header), ...lines.map(format), '', ...notes].join('\n');
  }
}

/**
 * Waits until every token of the case reached the model and every message the case names is Delivered,
 * reading the model server's log each second. Sets nothing; returns when it was so.
 */
export async function untilDelivered(
  c: CaseContext,
  ledger: Ledger,
  watch: MessageWatch,
  options: { messages?: string[]; timeoutMs?: number } = {},
): Promise<number> {
  await eventually(
    async () => {
      await ledger.read();
      const tally = ledger.tally(c.tokens);
      const pending = (options.messages ?? []).filter((m) => !watch.get(c.namespace, m)?.delivered);
      return { tally, pending };
    },
    ({ tally, pending }) => tally.lost === 0 && pending.length === 0,
    {
      what: `every message of case ${c.number} delivered`,
      timeoutMs: options.timeoutMs ?? 90_000,
      intervalMs: 1000,
      describe: ({ tally, pending }) =>
        `missing ${JSON.stringify(tally.missing)}; not Delivered: ${JSON.stringify(
          pending.map((m) => [m, watch.get(c.namespace, m)?.phase, watch.get(c.namespace, m)?.reason]),
        )}`,
    },
  );
  return Date.now();
}

/** The issue_comment deliveries GitHub would send for comments the fake holds on pull request `pr`. */
export async function commentDeliveries(
  sandbox: FaultSandbox,
  pr: number,
  ids: number[],
): Promise<Array<Record<string, unknown>>> {
  const response = await fetch(`${sandbox.gh.url}/repos/o/r/issues/${pr}/comments`, {
    headers: { authorization: 'token ghp-session-token' },
  });
  const comments = (await response.json()) as Array<{ id: number }>;
  return ids.map((id) => {
    const payload = issueCommentOnPullRequest({ repository: 'o/r', pullRequest: pr }) as Record<
      string,
      unknown
    >;
    payload.comment = comments.find((c) => c.id === id);
    if (!payload.comment) throw new Error(`the fake GitHub has no comment ${id} on #${pr}`);
    return payload;
  });
}

/**
 * Clients without the secret that try to hold the webhook's body budget: each opens a connection, sends
 * the headers of a 25 MB issue_comment delivery with a well-formed but wrong X-Hub-Signature-256, and
 * then sends nothing (`silent`) or 1 KB a second (`dribbling`). Each connection is opened again 100 ms
 * after the server closes it, for as long as the attack lasts.
 */
export function holdBodyBudget(url: string, options: { silent: number; dribbling: number }) {
  const target = new URL(url);
  const sockets = new Set<Socket>();
  const answers: Record<string, number> = {};
  let opened = 0;
  let stopped = false;
  const open = (dribble: boolean) => {
    if (stopped) return;
    opened += 1;
    const socket = connect(Number(target.port), target.hostname);
    sockets.add(socket);
    let timer: NodeJS.Timeout | undefined;
    let answered = false;
    socket.on('connect', () => {
      socket.write(
        [
          `POST ${target.pathname} HTTP/1.1`,
          `Host: ${target.host}`,
          'Content-Type: application/json',
          'Content-Length: 26214400',
          'User-Agent: GitHub-Hookshot/hostile',
          'X-GitHub-Event: issue_comment',
          `X-GitHub-Delivery: ${randomUUID()}`,
          `X-Hub-Signature-256: sha256=${randomBytes(32).toString('hex')}`,
          '',
          '',
        ].join('\r\n'),
      );
      if (dribble) timer = setInterval(() => socket.write('x'.repeat(1024)), 1000);
    });
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      answered = true;
      const code = chunk.toString('latin1').split('\r\n')[0]?.split(' ')[1] ?? '?';
      answers[code] = (answers[code] ?? 0) + 1;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      sockets.delete(socket);
      if (!stopped) setTimeout(() => open(dribble), 100);
    });
  };
  for (let i = 0; i < options.silent; i++) open(false);
  for (let i = 0; i < options.dribbling; i++) open(true);
  return {
    connected: () => [...sockets].filter((s) => !s.connecting && !s.destroyed).length,
    stop: () => {
      stopped = true;
      for (const socket of sockets) socket.destroy();
      return { opened, answers };
    },
  };
}
