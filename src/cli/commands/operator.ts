import type { Command } from 'commander';
import { operatorConfig } from '../../config/index.js';
import { runOperator } from '../../operator/run.js';
import type { CliDeps } from '../main.js';
import { packageVersion } from '../main.js';

export function registerOperator(program: Command, deps: CliDeps): void {
  program
    .command('operator')
    .description('reconcile CodeMate resources into session pods (the in-cluster controller; JSON logs)')
    .option('--watch-namespace <ns>', 'watch one namespace (env CODEMATE_WATCH_NAMESPACE; default: all)')
    .option(
      '--no-leader-elect',
      'run without a leader Lease (only for a single replica; env CODEMATE_LEADER_ELECT=false)',
    )
    .option(
      '--lease-namespace <ns>',
      'namespace of the leader Lease (env POD_NAMESPACE; default codemate-system)',
    )
    .option('--lease-name <name>', 'name of the leader Lease (default codemate-operator)')
    .option(
      '--health-port <port>',
      'port for /healthz, /readyz and /metrics (env CODEMATE_HEALTH_PORT; default 8081)',
    )
    .option('--session-image <image>', 'image for CodeMates without spec.image (env CODEMATE_SESSION_IMAGE)')
    .option('--workers <n>', 'concurrent reconciles (default 4)')
    .option('--resync-seconds <s>', 'reconcile every CodeMate at least this often (default 300)')
    .option('--message-retention <n>', 'delivered messages kept per CodeMate (default 50)')
    .option(
      '--message-expiry-seconds <s>',
      'a message not delivered this long after its creation fails (env CODEMATE_MESSAGE_EXPIRY_SECONDS; default 86400)',
    )
    .option('--log-level <level>', 'trace, debug, info, warn or error (env LOG_LEVEL)')
    .addHelpText(
      'after',
      `
In a cluster it runs from manifests/operator.yaml with its ServiceAccount. Locally:

Examples:
  $ codemate operator --kubeconfig ~/.kube/config --no-leader-elect --health-port 9081
  $ curl -s localhost:9081/metrics | grep codemate_reconcile_total`,
    )
    .action(async (flags: Record<string, unknown>, command: Command) => {
      const config = operatorConfig(deps.env, { ...command.optsWithGlobals(), ...flags }, packageVersion());
      await runOperator(config);
    });
}
