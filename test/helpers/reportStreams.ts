/**
 * `codemate-report --watch` without a pod, for the operator's session reports in integration tests: the
 * report streams they open, each of which the test writes report lines into.
 */
import { PassThrough } from 'node:stream';
import type { ExecStream } from '../../src/clients/exec.js';
import type { SessionReportsOptions } from '../../src/operator/sessionReports.js';

/**
 * An `openReport` that opens a stream at once and says it is ready; `streams` gets, per pod, the function
 * that writes text into the stream's output.
 */
export function fakeReports(
  streams: Map<string, (text: string) => void>,
): NonNullable<SessionReportsOptions['openReport']> {
  return async (_namespace, pod, onStdout) => {
    const stdin = new PassThrough();
    let end!: (code: number) => void;
    const closed = new Promise<number>((resolve) => (end = resolve));
    streams.set(pod, (text) => onStdout(Buffer.from(text)));
    onStdout(Buffer.from('codemate-report ready 1\n'));
    return { stdin, closed, close: () => end(0) } satisfies ExecStream;
  };
}
