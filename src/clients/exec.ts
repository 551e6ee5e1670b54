/**
 * Exec and logs through the Kubernetes API: the same path `kubectl exec` takes (apiserver → kubelet),
 * which in the sandbox is kwok mapping it to a host process.
 */
import type { KubeConfig, V1Status } from '@kubernetes/client-node';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { Kube } from './kube.js';

/**
 * The SDK's exec client, loaded on first use and from its own module: the SDK's index loads every
 * generated API (about 75 MiB), and exec needs none of them. It reads only the cluster and the
 * credentials of a KubeConfig, which `Kube.sdkConfig` supplies.
 */
async function execClient(kube: Kube) {
  const { Exec } = await import('@kubernetes/client-node/dist/exec.js');
  return new Exec(kube.sdkConfig() as unknown as KubeConfig);
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The command's exit code; -1 when the stream ended without a status. */
  exitCode: number;
}

export interface ExecOptions {
  container: string;
  stdin?: string | Buffer;
  /** Settle with an error when the command has not finished within this bound. */
  timeoutMs?: number;
}

/**
 * Exit code from the V1Status the API sends at the end of an exec stream. A kubelet reports a
 * non-zero exit as reason NonZeroExitCode with an ExitCode cause; kwok (v0.8) reports it as an
 * InternalError whose message ends in Go's "exit status N", so that form is read too.
 */
export function exitCodeOf(status: V1Status): number {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (cause?.message !== undefined) return Number(cause.message);
  const goExit = /\bexit status (\d+)\s*$/.exec(status.message ?? '');
  return goExit ? Number(goExit[1]) : -1;
}

/** A stream that hands each chunk of a command's output to `to`. */
function sink(to: (chunk: Buffer) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      to(chunk);
      done();
    },
  });
}

/**
 * Runs a command in a pod and settles exactly once: on the status frame, on the socket closing, or on
 * the timeout (which also closes the socket).
 */
export async function execInPod(
  kube: Kube,
  namespace: string,
  pod: string,
  command: string[],
  options: ExecOptions,
): Promise<ExecResult> {
  let stdout = '';
  let stderr = '';
  const stdin = options.stdin === undefined ? null : Readable.from([Buffer.from(options.stdin)]);
  let status: V1Status | undefined;

  return new Promise<ExecResult>((resolve, reject) => {
    let settled = false;
    let socket: { close(): void } | undefined;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.close();
      fn();
    };
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(new Error(`exec in ${namespace}/${pod} did not finish within ${options.timeoutMs} ms`)),
        ),
      options.timeoutMs ?? 60_000,
    );
    execClient(kube)
      .then((exec) =>
        exec.exec(
          namespace,
          pod,
          options.container,
          command,
          sink((chunk) => (stdout += chunk.toString('utf8'))),
          sink((chunk) => (stderr += chunk.toString('utf8'))),
          stdin,
          false,
          (s) => {
            status = s;
          },
        ),
      )
      .then((ws) => {
        socket = ws;
        if (settled) ws.close();
        ws.on('close', () =>
          settle(() => {
            if (status?.status === 'Failure' && exitCodeOf(status) === -1) {
              reject(new Error(`exec in ${namespace}/${pod} failed: ${status.message ?? status.reason}`));
            } else resolve({ stdout, stderr, exitCode: status ? exitCodeOf(status) : -1 });
          }),
        );
      })
      .catch((error: unknown) => settle(() => reject(error)));
  });
}

/** A long-lived exec: its stdin stays open for the caller to write to. */
export interface ExecStream {
  readonly stdin: Writable;
  /** Settles when the stream ends: the command's exit code, or -1 when it ended without a status. */
  readonly closed: Promise<number>;
  close(): void;
}

/**
 * Starts a command in a pod and keeps its stdin open (`kubectl exec -i` without an end): `onStdout` and
 * `onStderr` get its output as it comes. Rejects when the exec cannot start.
 */
export async function openExec(
  kube: Kube,
  namespace: string,
  pod: string,
  command: string[],
  io: { container: string; onStdout: (chunk: Buffer) => void; onStderr: (chunk: Buffer) => void },
): Promise<ExecStream> {
  const stdin = new PassThrough();
  // A write racing the stream's end fails; the end itself is reported through `closed`.
  stdin.on('error', () => undefined);
  let status: V1Status | undefined;
  const ws = await (
    await execClient(kube)
  ).exec(namespace, pod, io.container, command, sink(io.onStdout), sink(io.onStderr), stdin, false, (s) => {
    status = s;
  });
  const closed = new Promise<number>((resolve) =>
    ws.on('close', () => {
      stdin.destroy();
      resolve(status ? exitCodeOf(status) : -1);
    }),
  );
  return { stdin, closed, close: () => ws.close() };
}

export interface LogOptions {
  container: string;
  follow?: boolean;
  tailLines?: number;
}

/** Streams a pod's log into `out`; resolves with a function that stops a follow. */
export async function streamPodLogs(
  kube: Kube,
  namespace: string,
  pod: string,
  out: Writable,
  options: LogOptions,
): Promise<{ stop(): void; done: Promise<void> }> {
  const pass = new PassThrough();
  const done = new Promise<void>((resolve) => pass.on('end', resolve).on('close', resolve));
  pass.pipe(out, { end: false });
  const { Log } = await import('@kubernetes/client-node');
  const controller = await new Log(kube.sdkConfig() as unknown as KubeConfig).log(
    namespace,
    pod,
    options.container,
    pass,
    {
      follow: options.follow ?? false,
      tailLines: options.tailLines,
    },
  );
  return { stop: () => controller.abort(), done };
}

/** Reads a pod's whole log (no follow). */
export async function readPodLogs(
  kube: Kube,
  namespace: string,
  pod: string,
  container: string,
): Promise<string> {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString('utf8');
      cb();
    },
  });
  const { done } = await streamPodLogs(kube, namespace, pod, out, { container });
  await done;
  return text;
}

/**
 * An interactive exec with a TTY: the caller's terminal (already in raw mode) is wired to the command.
 * Resizes of `stdout` reach the remote terminal when the kubelet supports them. Resolves with the exit
 * code when the remote command ends.
 */
export async function execInteractive(
  kube: Kube,
  namespace: string,
  pod: string,
  command: string[],
  io: { container: string; stdin: Readable; stdout: Writable; stderr: Writable },
): Promise<number> {
  let status: V1Status | undefined;
  const ws = await (
    await execClient(kube)
  ).exec(namespace, pod, io.container, command, io.stdout, io.stderr, io.stdin, true, (s) => {
    status = s;
  });
  return new Promise((resolve) => ws.on('close', () => resolve(status ? exitCodeOf(status) : 0)));
}
