/**
 * How delivery runs codemate-inject in a session pod. Each session gets a standing channel: one
 * long-lived exec of `codemate-inject --serve`, which takes one message after another on its stdin and
 * answers each with a line. That saves every message an exec (a websocket through the apiserver and the
 * node) and the script's start (adr/0007). When the channel is not open yet, or breaks, the message goes
 * by one exec of `codemate-inject` as before, at once: both forms keep the same per-id records in the
 * session, so a message whose channel broke mid-way is never pasted twice.
 *
 * Under spec.monitoring.delivery WhenIdle, one request carries several messages (`injectWhenIdle`): the
 * session pastes them as one prompt when no turn runs, or nothing while one does, and answers per message.
 */
import { sessionContainer } from '../api/pod.js';
import { execInPod, openExec, type ExecStream } from '../clients/exec.js';
import type { Kube } from '../clients/kube.js';
import { channelOpens, injectExecTimeoutMs } from '../config/defaults.js';
import type { Logger } from '../observability/log.js';
import { backoffDelay, Spreader } from '../runtime/rate.js';

/** What one injection returned: codemate-inject's exit code and the stderr line that says why. */
export interface InjectResult {
  exitCode: number;
  stderr: string;
  path: 'channel' | 'exec';
}

/** One message of a WhenIdle request: its id and its text (framed by frameBody). */
export interface BatchItem {
  id: string;
  text: string;
}

/** One line of `codemate-inject --serve` (setup/scripts/codemate-inject). */
export type ChannelLine =
  /** Version 2 also takes WhenIdle requests. */
  | { kind: 'ready'; version: 1 | 2 }
  | { kind: 'done'; id: string; exitCode: number; detail: string }
  | { kind: 'other'; line: string };

/** Parses one line the serve loop printed (pure). */
export function parseChannelLine(line: string): ChannelLine {
  if (line === 'codemate-serve ready 1') return { kind: 'ready', version: 1 };
  if (line === 'codemate-serve ready 2') return { kind: 'ready', version: 2 };
  const done = /^codemate-serve done (\S+) (\d+) ?(.*)$/.exec(line);
  if (done) return { kind: 'done', id: done[1]!, exitCode: Number(done[2]), detail: done[3] ?? '' };
  return { kind: 'other', line };
}

/** One request to the serve loop: its line, then exactly the text's bytes (pure). */
export function channelRequest(id: string, text: string, ackTimeoutSeconds: number): Buffer {
  const body = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from(`${id} ${body.length} ${ackTimeoutSeconds}\n`), body]);
}

/**
 * One WhenIdle request to the serve loop (version 2): the ids and the byte counts, comma-separated, then the
 * texts one after another (pure). The one-shot form takes the same lists as arguments.
 */
export function whenIdleRequest(items: BatchItem[], ackTimeoutSeconds: number): Buffer {
  const bodies = items.map((item) => Buffer.from(item.text, 'utf8'));
  const line = `${items.map((i) => i.id).join(',')} ${bodies.map((b) => b.length).join(',')} ${ackTimeoutSeconds} when-idle\n`;
  return Buffer.concat([Buffer.from(line), ...bodies]);
}

/**
 * The result of each message of a WhenIdle request, in order (pure): its own `done` line, or, for one the
 * script did not answer (an older session image, a failure before any answer), the exit code and the last
 * stderr line of the whole run.
 */
export function batchResults(
  ids: string[],
  output: string,
  exitCode: number,
  stderr: string,
  path: 'channel' | 'exec',
): InjectResult[] {
  const answered = new Map<string, { exitCode: number; stderr: string }>();
  for (const raw of output.split('\n')) {
    const line = parseChannelLine(raw.startsWith('done ') ? `codemate-serve ${raw}` : raw);
    if (line.kind === 'done') answered.set(line.id, { exitCode: line.exitCode, stderr: line.detail });
  }
  const detail = stderr.trim().split('\n').at(-1) ?? '';
  return ids.map((id) => ({
    ...(answered.get(id) ?? { exitCode: exitCode === 0 ? -1 : exitCode, stderr: detail }),
    path,
  }));
}

/** How long a channel may take to say it is ready before the pod is taken to have none. */
const channelOpenTimeoutMs = 10_000;
/**
 * A pod whose channel would not open is not tried again for this long, doubled after each refusal up
 * to channelRetryMaxMs (messages go by exec meanwhile): a session image without the serve loop would
 * otherwise cost an exec a minute for as long as it runs.
 */
const channelRetryMs = 60_000;
const channelRetryMaxMs = 15 * 60_000;

/** The standing channel into one pod. */
class Channel {
  private buffered = '';
  private pending:
    | { ids: string[]; got: InjectResult[]; resolve: (r: InjectResult[]) => void; reject: (e: Error) => void }
    | undefined;
  /** The serve loop's protocol version (its ready line); 2 takes WhenIdle requests. */
  version: 1 | 2 = 1;
  private stream: ExecStream | undefined;
  private isOpen = false;
  private ended = false;
  readonly ready: Promise<void>;
  private readyResolve!: () => void;
  private readyReject!: (error: Error) => void;

  constructor(
    readonly pod: string,
    private readonly onEnd: (channel: Channel, why: string) => void,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // Only the caller that opened it awaits `ready`; a rejection nobody awaits is not an error here.
    this.ready.catch(() => undefined);
  }

  get open(): boolean {
    return this.isOpen && this.pending === undefined;
  }

  async start(kube: Kube, namespace: string): Promise<void> {
    const timer = setTimeout(
      () => this.end(`not ready within ${channelOpenTimeoutMs} ms`),
      channelOpenTimeoutMs,
    );
    try {
      this.stream = await openExec(kube, namespace, this.pod, ['codemate-inject', '--serve'], {
        container: sessionContainer,
        onStdout: (chunk) => this.read(chunk),
        onStderr: () => undefined,
      });
      void this.stream.closed.then((code) => this.end(`the exec ended (exit code ${code})`));
      await this.ready;
    } catch (error) {
      this.end((error as Error).message);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends one request and resolves with the answer of each of `ids`, in order. */
  request(ids: string[], request: Buffer, ackTimeoutSeconds: number): Promise<InjectResult[]> {
    const stream = this.stream;
    if (!this.open || !stream) return Promise.reject(new Error('the channel is not open'));
    return new Promise<InjectResult[]>((resolve, reject) => {
      const timer = setTimeout(
        () => this.end(`no answer for ${ids.join(',')} within ${injectExecTimeoutMs(ackTimeoutSeconds)} ms`),
        injectExecTimeoutMs(ackTimeoutSeconds),
      );
      this.pending = {
        ids,
        got: [],
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      stream.stdin.write(request);
    });
  }

  close(): void {
    this.end('closed');
  }

  private read(chunk: Buffer): void {
    this.buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = parseChannelLine(this.buffered.slice(0, nl));
      this.buffered = this.buffered.slice(nl + 1);
      const pending = this.pending;
      if (line.kind === 'ready') {
        this.version = line.version;
        this.isOpen = true;
        this.readyResolve();
      } else if (line.kind === 'done' && pending?.ids[pending.got.length] === line.id) {
        // Answers come in the order of the request's ids, one line each.
        pending.got.push({ exitCode: line.exitCode, stderr: line.detail, path: 'channel' });
        if (pending.got.length === pending.ids.length) {
          this.pending = undefined;
          pending.resolve(pending.got);
        }
      } else {
        this.end(
          `unexpected output: ${JSON.stringify(line.kind === 'other' ? line.line : line).slice(0, 200)}`,
        );
      }
    }
  }

  private end(why: string): void {
    if (this.ended) return;
    this.ended = true;
    this.isOpen = false;
    const stdin = this.stream?.stdin;
    // An empty line ends the serve loop: under kwok, closing the exec does not end the process. Not once
    // the stream has ended (its stdin is gone then, and a write would fail).
    if (stdin?.writable) stdin.end('\n');
    this.stream?.close();
    const error = new Error(`the channel into pod ${this.pod} ended: ${why}`);
    this.readyReject(error);
    this.pending?.reject(error);
    this.pending = undefined;
    this.onEnd(this, why);
  }
}

export interface InjectorOptions {
  kube: Kube;
  logger: Logger;
  /** Whether to use standing channels at all (off: one exec per message, as before). */
  channels?: boolean;
}

/** Runs codemate-inject in session pods: through each session's channel when it is open, else by exec. */
export class Injector {
  /** By CodeMate key (namespace/name): the channel into its current pod. */
  private readonly channels = new Map<string, Channel>();
  /** By CodeMate key: the pod whose channel would not open, how often, and when to try it again. */
  private readonly refused = new Map<string, { pod: string; failures: number; retryAt: number }>();

  constructor(private readonly options: InjectorOptions) {}

  /**
   * Channels are opened at most `channelOpens.perSecond` after a burst: each is an exec through the
   * apiserver to the node, and a thousand sessions turning Running at once would otherwise open a
   * thousand at once, on the cores their pods are being created with. A message that comes before its
   * session's channel goes by one exec, as when a channel cannot open.
   */
  private readonly opens = new Spreader(channelOpens.burst, channelOpens.perSecond);
  /** Channels waiting for their turn to open, by CodeMate key. */
  private readonly waiting = new Map<string, { pod: string; timer: NodeJS.Timeout }>();

  /**
   * Opens the channel into a session's pod in the background if it is not open or opening, and closes
   * one into an older pod of the same CodeMate.
   */
  prepare(key: string, namespace: string, pod: string): void {
    if (this.options.channels === false) return;
    const current = this.channels.get(key);
    if (current?.pod === pod) return;
    current?.close();
    const refused = this.refused.get(key);
    if (refused?.pod === pod && Date.now() < refused.retryAt) return;
    const queued = this.waiting.get(key);
    if (queued?.pod === pod) return;
    if (queued) clearTimeout(queued.timer);
    this.waiting.delete(key);
    const delay = this.opens.take();
    if (delay > 0) {
      // The slot is reserved: when it comes, open (unless the pod changed or a channel opened meanwhile).
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        if (this.channels.get(key)?.pod !== pod) this.open(key, namespace, pod);
      }, delay);
      timer.unref();
      this.waiting.set(key, { pod, timer });
      return;
    }
    this.open(key, namespace, pod);
  }

  private open(key: string, namespace: string, pod: string): void {
    const channel = new Channel(pod, (c, why) => {
      if (this.channels.get(key) === c) this.channels.delete(key);
      if (why !== 'closed')
        this.options.logger.debug({ codemate: key, pod }, `session channel ended: ${why}`);
    });
    this.channels.set(key, channel);
    channel.start(this.options.kube, namespace).then(
      () => {
        this.refused.delete(key);
        this.options.logger.debug({ codemate: key, pod }, 'session channel open');
      },
      (error: unknown) => {
        const before = this.refused.get(key);
        const failures = before?.pod === pod ? before.failures + 1 : 1;
        const wait = backoffDelay(failures, channelRetryMs, channelRetryMaxMs);
        this.refused.set(key, { pod, failures, retryAt: Date.now() + wait });
        this.options.logger.info(
          { codemate: key, pod, err: (error as Error).message },
          'no session channel; messages go by one exec each',
        );
      },
    );
  }

  /** Injects one message: through the channel when it is open, else (or if it breaks) by one exec. */
  async inject(
    key: string,
    namespace: string,
    pod: string,
    id: string,
    text: string,
    ackTimeoutSeconds: number,
  ): Promise<InjectResult> {
    const request = channelRequest(id, text, ackTimeoutSeconds);
    const answered = await this.throughChannel(key, pod, [id], request, ackTimeoutSeconds, 1);
    if (answered) return answered[0]!;
    const result = await this.exec(
      key,
      namespace,
      pod,
      ['--bytes', String(Buffer.byteLength(text))],
      [id],
      text,
      ackTimeoutSeconds,
    );
    return { exitCode: result.exitCode, stderr: result.stderr, path: 'exec' };
  }

  /**
   * Injects messages under WhenIdle: pasted together as one prompt when no turn runs, or not at all (each
   * answered `sessionBusy`). Through the channel when it is open and speaks version 2, else by one exec.
   */
  async injectWhenIdle(
    key: string,
    namespace: string,
    pod: string,
    items: BatchItem[],
    ackTimeoutSeconds: number,
  ): Promise<InjectResult[]> {
    const ids = items.map((i) => i.id);
    const request = whenIdleRequest(items, ackTimeoutSeconds);
    const answered = await this.throughChannel(key, pod, ids, request, ackTimeoutSeconds, 2);
    if (answered) return answered;
    const bodies = items.map((i) => Buffer.from(i.text, 'utf8'));
    const bytes = bodies.map((b) => b.length).join(',');
    const result = await this.exec(
      key,
      namespace,
      pod,
      ['--when-idle', '--bytes', bytes],
      ids,
      Buffer.concat(bodies),
      ackTimeoutSeconds,
    );
    return batchResults(ids, result.stdout, result.exitCode, result.stderr, 'exec');
  }

  /**
   * One request through the CodeMate's channel, when it is open into `pod` and speaks `version`; undefined
   * when it is not, or broke (the messages' fate is then unknown, and codemate-inject's per-id records
   * make the exec that follows safe).
   */
  private async throughChannel(
    key: string,
    pod: string,
    ids: string[],
    request: Buffer,
    ackTimeoutSeconds: number,
    version: 1 | 2,
  ): Promise<InjectResult[] | undefined> {
    const channel = this.channels.get(key);
    if (channel?.pod !== pod || !channel.open || channel.version < version) return undefined;
    try {
      return await channel.request(ids, request, ackTimeoutSeconds);
    } catch (error) {
      this.options.logger.info(
        { codemate: key, pod, message: ids.join(','), err: (error as Error).message },
        'session channel broke; delivering by exec',
      );
      return undefined;
    }
  }

  /** One exec of codemate-inject with `options`, the ids and the texts on stdin; opens the channel for next time. */
  private exec(
    key: string,
    namespace: string,
    pod: string,
    options: string[],
    ids: string[],
    stdin: string | Buffer,
    ackTimeoutSeconds: number,
  ) {
    this.prepare(key, namespace, pod);
    return execInPod(
      this.options.kube,
      namespace,
      pod,
      ['codemate-inject', ...options, '--timeout', String(ackTimeoutSeconds), ids.join(',')],
      { container: sessionContainer, stdin, timeoutMs: injectExecTimeoutMs(ackTimeoutSeconds) },
    );
  }

  /** Closes a CodeMate's channel (its session went away). */
  forget(key: string): void {
    this.refused.delete(key);
    this.channels.get(key)?.close();
    clearTimeout(this.waiting.get(key)?.timer);
    this.waiting.delete(key);
  }

  closeAll(): void {
    for (const channel of [...this.channels.values()]) channel.close();
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    this.refused.clear();
  }
}
