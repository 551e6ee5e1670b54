/**
 * How delivery runs codemate-inject in a session pod. Each session gets a standing channel: one
 * long-lived exec of `codemate-inject --serve`, which takes one message after another on its stdin and
 * answers each with a line. That saves every message an exec (a websocket through the apiserver and the
 * node) and the script's start (adr/0007). When the channel is not open yet, or breaks, the message goes
 * by one exec of `codemate-inject` as before, at once: both forms keep the same per-id records in the
 * session, so a message whose channel broke mid-way is never pasted twice.
 */
import { sessionContainer } from '../api/pod.js';
import { execInPod, openExec, type ExecStream } from '../clients/exec.js';
import type { Kube } from '../clients/kube.js';
import { injectExecTimeoutMs } from '../config/defaults.js';
import type { Logger } from '../observability/log.js';

/** What one injection returned: codemate-inject's exit code and the stderr line that says why. */
export interface InjectResult {
  exitCode: number;
  stderr: string;
  path: 'channel' | 'exec';
}

/** One line of `codemate-inject --serve` (setup/scripts/codemate-inject). */
export type ChannelLine =
  | { kind: 'ready' }
  | { kind: 'done'; id: string; exitCode: number; detail: string }
  | { kind: 'other'; line: string };

/** Parses one line the serve loop printed (pure). */
export function parseChannelLine(line: string): ChannelLine {
  if (line === 'codemate-serve ready 1') return { kind: 'ready' };
  const done = /^codemate-serve done (\S+) (\d+) ?(.*)$/.exec(line);
  if (done) return { kind: 'done', id: done[1]!, exitCode: Number(done[2]), detail: done[3] ?? '' };
  return { kind: 'other', line };
}

/** One request to the serve loop: its line, then exactly the text's bytes (pure). */
export function channelRequest(id: string, text: string, ackTimeoutSeconds: number): Buffer {
  const body = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from(`${id} ${body.length} ${ackTimeoutSeconds}\n`), body]);
}

/** How long a channel may take to say it is ready before the pod is taken to have none. */
const channelOpenTimeoutMs = 10_000;
/** A pod whose channel would not open is not tried again for this long (messages go by exec). */
const channelRetryMs = 60_000;

/** The standing channel into one pod. */
class Channel {
  private buffered = '';
  private pending: { id: string; resolve: (r: InjectResult) => void; reject: (e: Error) => void } | undefined;
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

  request(id: string, text: string, ackTimeoutSeconds: number): Promise<InjectResult> {
    const stream = this.stream;
    if (!this.open || !stream) return Promise.reject(new Error('the channel is not open'));
    return new Promise<InjectResult>((resolve, reject) => {
      const timer = setTimeout(
        () => this.end(`no answer for ${id} within ${injectExecTimeoutMs(ackTimeoutSeconds)} ms`),
        injectExecTimeoutMs(ackTimeoutSeconds),
      );
      this.pending = {
        id,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      stream.stdin.write(channelRequest(id, text, ackTimeoutSeconds));
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
      if (line.kind === 'ready') {
        this.isOpen = true;
        this.readyResolve();
      } else if (line.kind === 'done' && this.pending?.id === line.id) {
        const pending = this.pending;
        this.pending = undefined;
        pending.resolve({ exitCode: line.exitCode, stderr: line.detail, path: 'channel' });
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
  /** Pods (namespace/pod) whose channel would not open, with when: not tried again for a while. */
  private readonly refused = new Map<string, number>();

  constructor(private readonly options: InjectorOptions) {}

  /**
   * Opens the channel into a session's pod in the background if it is not open or opening, and closes
   * one into an older pod of the same CodeMate.
   */
  prepare(key: string, namespace: string, pod: string): void {
    if (this.options.channels === false) return;
    const current = this.channels.get(key);
    if (current?.pod === pod) return;
    current?.close();
    for (const [refusedPod, at] of this.refused)
      if (Date.now() - at >= channelRetryMs) this.refused.delete(refusedPod);
    if (this.refused.has(`${namespace}/${pod}`)) return;
    const channel = new Channel(pod, (c, why) => {
      if (this.channels.get(key) === c) this.channels.delete(key);
      if (why !== 'closed')
        this.options.logger.debug({ codemate: key, pod }, `session channel ended: ${why}`);
    });
    this.channels.set(key, channel);
    channel.start(this.options.kube, namespace).then(
      () => this.options.logger.debug({ codemate: key, pod }, 'session channel open'),
      (error: unknown) => {
        this.refused.set(`${namespace}/${pod}`, Date.now());
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
    const channel = this.channels.get(key);
    if (channel?.pod === pod && channel.open) {
      try {
        return await channel.request(id, text, ackTimeoutSeconds);
      } catch (error) {
        // The message's fate is unknown; codemate-inject's records make the exec below safe.
        this.options.logger.info(
          { codemate: key, pod, message: id, err: (error as Error).message },
          'session channel broke; delivering by exec',
        );
      }
    }
    this.prepare(key, namespace, pod);
    const result = await execInPod(
      this.options.kube,
      namespace,
      pod,
      [
        'codemate-inject',
        '--bytes',
        String(Buffer.byteLength(text)),
        '--timeout',
        String(ackTimeoutSeconds),
        id,
      ],
      { container: sessionContainer, stdin: text, timeoutMs: injectExecTimeoutMs(ackTimeoutSeconds) },
    );
    return { exitCode: result.exitCode, stderr: result.stderr, path: 'exec' };
  }

  /** Closes a CodeMate's channel (its session went away). */
  forget(key: string): void {
    this.channels.get(key)?.close();
  }

  closeAll(): void {
    for (const channel of [...this.channels.values()]) channel.close();
    this.refused.clear();
  }
}
