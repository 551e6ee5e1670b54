/**
 * Every command's name, arguments, flags and help, declared up front, and each verb's module imported only
 * when that verb runs. `codemate --help`, `--version` and `<verb> --help` therefore load commander and
 * this file, and no SDK: client-node alone costs about 1 s of CPU, zod 0.07 s (bench/README.md).
 */
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import type { Env } from '../config/index.js';
import type { Output } from './output.js';

export interface CliDeps {
  out: Output;
  /** The environment, parsed on first use: the quick commands run without loading its schema. */
  env(): Promise<Env>;
}

/** One run of a verb: what commander parsed. */
export interface Invocation {
  /** The arguments, in declaration order. */
  args: unknown[];
  /** The command's own flags. */
  flags: Record<string, unknown>;
  /** The command's flags with the global ones (--kubeconfig, --context, -n). */
  globals: Record<string, unknown>;
}

export type Verb = (invocation: Invocation, deps: CliDeps) => Promise<void>;

export const listFormats = ['table', 'wide', 'json', 'yaml'] as const;

/** The verbs whose first argument is a CodeMate name, which shell completion offers. */
export const nameVerbs = ['inject', 'attach', 'describe', 'logs', 'delete', 'suspend', 'resume'];

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function buildProgram(deps: CliDeps): Command {
  /** An action that imports the verb's module, then runs the verb. */
  const verb =
    <K extends string, M extends Record<K, Verb>>(load: () => Promise<M>, name: K) =>
    async (...params: unknown[]): Promise<void> => {
      const command = params.at(-1) as Command;
      const run = (await load())[name];
      await run(
        { args: command.processedArgs, flags: command.opts(), globals: command.optsWithGlobals() },
        deps,
      );
    };

  const program = new Command('codemate')
    .description('Kubernetes-native Claude Code sessions for branches and pull requests.')
    .version(packageVersion(), '-v, --version', 'print the codemate version')
    .helpOption('-h, --help', 'show help for a command')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('--context <name>', 'kubeconfig context to use')
    .option('-n, --namespace <ns>', "namespace (default: the context's)")
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => deps.out.stdout.write(s),
      writeErr: (s) => deps.out.stderr.write(s),
      outputError: (s, write) => write(deps.out.color.red(s)),
    })
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  $ codemate create --repo https://github.com/acme/api.git --pr 123 --wait
  $ codemate list
  $ codemate inject pr-123 "Please rebase on main"
  $ codemate dev up                 # start a local Kubernetes sandbox
  $ eval "$(codemate dev up)"       # ...and point kubectl and codemate at it
  $ codemate dev status             # what is running
  $ codemate dev down               # stop everything the sandbox started

Docs: docs/README.md`,
    );

  program
    .command('create')
    .argument('[name]', 'CodeMate name (default: pr-<N>, or a slug of the branch)')
    .description('create a CodeMate: a Claude Code session on a branch or pull request')
    .option('--repo <url>', 'git URL (https, ssh, or file:// in the sandbox)')
    .option('--branch <branch>', 'branch to work on (created from --base when missing)')
    .option('--pr <number>', 'pull request to check out and follow')
    .option('--base <branch>', 'base branch for a new branch (default: the repository default)')
    .option('--github-secret <name>', 'secret with key "token": the GitHub token (default: github-token)')
    .option('--github-app', "no token: the session authenticates as the operator's GitHub App")
    .option('--anthropic-secret <name>', 'secret with key "token": the Anthropic API key', 'anthropic-key')
    .option('--git-user-name <name>', 'git author name for the session')
    .option('--git-user-email <email>', 'git author email for the session')
    .option('--task <text>', "the session's first instruction")
    .option('--image <image>', "session image (default: the operator's)")
    .option('--storage <size>', 'keep the workspace on a PersistentVolumeClaim of this size, e.g. 10Gi')
    .option(
      '--idle-suspend-after <duration>',
      'suspend the session after it has been idle this long (e.g. 2h); a new comment resumes it',
    )
    .option(
      '--delivery <mode>',
      'immediate (default): paste each message at once; when-idle: hold messages while a turn runs, then send them as one prompt',
    )
    .option('--wait', 'wait until the session runs, or fails, and say why')
    .option('--timeout <seconds>', 'how long --wait waits', '300')
    .option('--dry-run', 'print the CodeMate instead of creating it')
    .option('-o, --output <format>', 'yaml or json')
    .addHelpText(
      'after',
      `
Examples:
  $ codemate create --repo https://github.com/acme/api.git --pr 123 --wait
  $ codemate create fix-login --repo git@github.com:acme/api.git --branch fix/login --task "Fix the login redirect"
  $ codemate create --repo https://github.com/acme/api.git --branch feature/x --dry-run -o yaml
  $ codemate create --repo https://github.com/acme/api.git --pr 7 --github-app --storage 10Gi --idle-suspend-after 2h`,
    )
    .action(verb(() => import('./commands/create.js'), 'create'));

  program
    .command('list')
    .alias('ls')
    .description('list CodeMates with their phase, pull request, pod and last message')
    .option('-A, --all-namespaces', 'list across all namespaces')
    .addOption(new Option('-o, --output <format>', 'output format').choices(listFormats).default('table'))
    .addHelpText(
      'after',
      "\nExamples:\n  $ codemate list\n  $ codemate list -A -o wide\n  $ codemate list -o json | jq -r '.items[].metadata.name'",
    )
    .action(verb(() => import('./commands/list.js'), 'list'));

  program
    .command('inject')
    .argument('<name>', 'CodeMate name')
    .argument('<message>', 'the text, or - to read it from stdin')
    .description('send a message into a running session and wait until it is delivered')
    .option('--no-wait', 'return once the message is queued')
    .option('--timeout <seconds>', 'how long to wait for delivery', '120')
    .addHelpText(
      'after',
      `
The message becomes a CodeMateMessage; the operator pastes it into the session exactly once.

Examples:
  $ codemate inject pr-123 "Please rebase on main and rerun the tests"
  $ git diff | codemate inject pr-123 -
  $ codemate inject pr-123 "Look at the CI failure" --no-wait`,
    )
    .action(verb(() => import('./commands/inject.js'), 'inject'));

  program
    .command('approve')
    .argument('<message>', 'CodeMateMessage name (kubectl get codematemessages)')
    .description('let in an untrusted comment that waits for approval; it is delivered once')
    .addHelpText(
      'after',
      `
A comment from an author the trust policy does not trust waits in phase AwaitingApproval. This prints
the text that was recorded and approves exactly that text. A 👍 or a "/codemate approve" reply on the
pull request from a trusted person does the same (docs/approvals.md).

Example:
  $ kubectl get codematemessages
  $ codemate approve pr-123-ic-2001`,
    )
    .action(verb(() => import('./commands/approve.js'), 'approve'));

  program
    .command('deny')
    .argument('<message>', 'CodeMateMessage name')
    .description('refuse an untrusted comment that waits for approval; it is never delivered')
    .addHelpText('after', '\nExample:\n  $ codemate deny pr-123-ic-2001')
    .action(verb(() => import('./commands/deny.js'), 'deny'));

  program
    .command('describe')
    .argument('<name>', 'CodeMate name')
    .description('show a CodeMate: spec, status, conditions, recent messages and events')
    .addHelpText('after', '\nExample:\n  $ codemate describe pr-123')
    .action(verb(() => import('./commands/describe.js'), 'describe'));

  program
    .command('logs')
    .argument('<name>', 'CodeMate name')
    .description("print the session's log: its setup, then the tmux pane")
    .option('-f, --follow', 'keep streaming new output')
    .option('--tail <lines>', 'only the last N lines')
    .addHelpText('after', '\nExamples:\n  $ codemate logs pr-123 --tail 50\n  $ codemate logs pr-123 -f')
    .action(verb(() => import('./commands/logs.js'), 'logs'));

  program
    .command('attach')
    .argument('<name>', 'CodeMate name')
    .description("attach your terminal to the session's tmux (detach with Ctrl-b d)")
    .option('--read-only', 'watch without typing')
    .addHelpText('after', '\nExamples:\n  $ codemate attach pr-123\n  $ codemate attach pr-123 --read-only')
    .action(verb(() => import('./commands/attach.js'), 'attach'));

  program
    .command('delete')
    .argument('<name>', 'CodeMate name')
    .description('delete a CodeMate with its pod, storage and messages')
    .addHelpText('after', '\nExample:\n  $ codemate delete pr-123')
    .action(verb(() => import('./commands/delete.js'), 'remove'));

  program
    .command('suspend')
    .argument('<name>', 'CodeMate name')
    .description('stop the session pod and keep its storage')
    .addHelpText('after', '\nExample:\n  $ codemate suspend pr-123')
    .action(verb(() => import('./commands/suspend.js'), 'suspend'));

  program
    .command('resume')
    .argument('<name>', 'CodeMate name')
    .description('start a suspended session again')
    .addHelpText('after', '\nExample:\n  $ codemate resume pr-123')
    .action(verb(() => import('./commands/resume.js'), 'resume'));

  const dev = program
    .command('dev')
    .description('run a local Kubernetes sandbox (etcd, kube-apiserver, controller-manager, scheduler, kwok)')
    .addHelpText(
      'after',
      `
The sandbox runs a real control plane on loopback ports. Its programs are built once from pinned
versions through the Go module proxy and cached; set CODEMATE_BIN_DIR to use prebuilt ones.

Examples:
  $ eval "$(codemate dev up)"
  $ kubectl get nodes
  $ codemate dev status -o json
  $ codemate dev down --purge`,
    );
  const stateDirOption = ['--state-dir <dir>', 'sandbox state directory (env CODEMATE_STATE_DIR)'] as const;

  dev
    .command('up')
    .description('start the sandbox in the background (idempotent) and print `export KUBECONFIG=...`')
    .option(...stateDirOption)
    .option('--apiserver-port <port>', 'serve the apiserver on this loopback port (default: a free one)')
    .option(
      '--runtime <runtime>',
      "what runs pods: process (host processes behind kwok) or containerd (a real kubelet and containerd; root). Default: the sandbox's own, else process",
    )
    .option(
      '--operator',
      "run the sandbox's own CodeMate operator and webhook (default: as the running sandbox does, else yes)",
    )
    .option(
      '--no-operator',
      "run neither the sandbox's own CodeMate operator nor its webhook, e.g. to install the Helm chart instead; later `dev up`s keep it so",
    )
    .option(
      '--images',
      "containerd runtime: build (or find) the operator/webhook and session images (as `dev build --images`), import them into the node's containerd, and run sessions from the session image",
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ eval "$(codemate dev up)" && kubectl get nodes\n  $ eval "$(sudo codemate dev up --runtime containerd --images)"\n  $ eval "$(codemate dev up --no-operator)" && helm install codemate charts/codemate ...',
    )
    .action(verb(() => import('./commands/dev.js'), 'up'));

  dev
    .command('down')
    .description('stop every process the sandbox started')
    .option(...stateDirOption)
    .option('--purge', 'also delete the state directory (cluster data, PKI, logs)')
    .addHelpText('after', '\nExample:\n  $ codemate dev down --purge')
    .action(verb(() => import('./commands/dev.js'), 'down'));

  dev
    .command('status')
    .description('report each sandbox component; exits 1 unless all are running')
    .option(...stateDirOption)
    .option('-o, --output <format>', 'text or json', 'text')
    .addHelpText('after', '\nExample:\n  $ codemate dev status -o json | jq .components')
    .action(verb(() => import('./commands/dev.js'), 'status'));

  dev
    .command('pod-runtime', { hidden: true })
    .description("run the pods of the sandbox's node as local processes (started by `dev up`)")
    .requiredOption('--dir <dir>', 'where pod directories live')
    .requiredOption('--node-name <name>', 'the node whose pods to run')
    .option('--anthropic-base-url <url>', "the Messages API for sessions' Claude Code")
    .option('--claude <path>', 'the claude program sessions run')
    .action(verb(() => import('./commands/dev.js'), 'podRuntime'));

  dev
    .command('model-server', { hidden: true })
    .description('serve a local Anthropic Messages API for sandbox sessions (started by `dev up`)')
    .requiredOption('--port <port>', 'the port to listen on')
    .option('--host <address>', 'the address to listen on', '127.0.0.1')
    .action(verb(() => import('./commands/dev.js'), 'modelServer'));

  dev
    .command('storage-provisioner', { hidden: true })
    .description('give each claim of the sandbox a hostPath volume (started by `dev up`)')
    .requiredOption('--dir <dir>', 'where volume directories live')
    .action(verb(() => import('./commands/dev.js'), 'storageProvisioner'));

  dev
    .command('build')
    .description(
      'build (or find) the control-plane binaries, the pinned Claude Code CLI and helm; print the binaries directory',
    )
    .option(
      '--runtime <runtime>',
      'also build the real node of this runtime (containerd: kubelet, containerd, pause)',
    )
    .option(
      '--images',
      "instead, build (or find) the operator/webhook and session images from the checkout's Dockerfiles, with buildah and locally made base images; print their names, IDs and OCI archives",
    )
    .addHelpText(
      'after',
      `
Both build once and cache the results under $CODEMATE_CACHE_DIR (default ~/.cache/codemate). --images needs
root, buildah and debootstrap (installed with apt when missing) and a source checkout, and reaches only the
npm registry and Debian's mirrors: no container registry. The first build takes minutes; a build with no
input changed is a cache hit.

Examples:
  $ export CODEMATE_BIN_DIR="$(codemate dev build)"
  $ codemate dev build --runtime containerd
  $ sudo codemate dev build --images`,
    )
    .action((...params: unknown[]) =>
      ((params.at(-1) as Command).opts().images
        ? verb(() => import('./commands/devImages.js'), 'buildImagesVerb')
        : verb(() => import('./commands/dev.js'), 'build'))(...params),
    );

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
    .option('--workers <n>', 'concurrent reconciles (default 8)')
    .option('--resync-seconds <s>', 'reconcile every CodeMate at least this often (default 300)')
    .option('--message-retention <n>', 'delivered messages kept per CodeMate (default 50)')
    .option(
      '--message-expiry-seconds <s>',
      'a message not delivered this long after its creation fails (env CODEMATE_MESSAGE_EXPIRY_SECONDS; default 86400)',
    )
    .option(
      '--approval-expiry-seconds <s>',
      'an untrusted comment not approved this long after it was recorded is rejected (env CODEMATE_APPROVAL_EXPIRY_SECONDS; default 604800)',
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
    .action(verb(() => import('./commands/operator.js'), 'operator'));

  const webhook = program
    .command('webhook')
    .description(
      'receive GitHub webhooks and turn comments into CodeMateMessages (in-cluster server; JSON logs)',
    )
    .option(
      '--port <port>',
      'port for POST /webhook/github, /healthz, /readyz, /metrics (env PORT; default 8080)',
    )
    .option('--host <address>', 'address to listen on (default 0.0.0.0)')
    .option(
      '--secret-file <path>',
      'file with the webhook secret(s), comma- or newline-separated (env GITHUB_WEBHOOK_SECRET_FILE)',
    )
    .option(
      '--watch-namespace <ns>',
      'route only to CodeMates in this namespace (env CODEMATE_WATCH_NAMESPACE)',
    )
    .option('--body-timeout-seconds <s>', 'answer 408 when a body has not arrived by then (default 10)')
    .option('--delivery-cache-size <n>', 'X-GitHub-Delivery ids remembered for replays (default 10000)')
    .option('--log-level <level>', 'trace, debug, info, warn or error (env LOG_LEVEL)')
    .addHelpText(
      'after',
      `
The secret is GITHUB_WEBHOOK_SECRET (or --secret-file); list several, comma-separated, while you rotate
it. In a cluster it runs from manifests/webhook.yaml. Set up GitHub as in docs/webhook.md.

Examples:
  $ GITHUB_WEBHOOK_SECRET=s3cret codemate webhook --port 8080
  $ codemate webhook replay --event issue_comment --payload comment.json --url http://127.0.0.1:8080`,
    )
    .action(verb(() => import('./commands/webhook.js'), 'serve'));

  webhook
    .command('replay')
    .description('sign a saved GitHub payload with the webhook secret and send it, as GitHub would')
    .requiredOption('--event <name>', 'the X-GitHub-Event, e.g. issue_comment, pull_request_review, ping')
    .requiredOption('--payload <file>', 'the JSON payload (- reads stdin)')
    .option(
      '--url <url>',
      'the webhook server (env CODEMATE_WEBHOOK_URL, set by `dev up`; default http://127.0.0.1:8080/webhook/github)',
    )
    .option('--delivery <id>', 'the X-GitHub-Delivery id (default: a new one; reuse one to test replays)')
    .option(
      '--secret-file <path>',
      'file with the secret (env GITHUB_WEBHOOK_SECRET, or GITHUB_WEBHOOK_SECRET_FILE as `dev up` sets it)',
    )
    .addHelpText(
      'after',
      `
The payload is sent as read (UTF-8), signed with the first secret. Copy payloads from a
webhook's "Recent Deliveries" page on GitHub, or from @octokit/webhooks-examples.

Examples:
  $ export GITHUB_WEBHOOK_SECRET=s3cret
  $ codemate webhook replay --event issue_comment --payload comment.json
  $ codemate webhook replay --event ping --payload ping.json --url https://codemate.example.com
  $ gh api repos/OWNER/REPO/hooks/ID/deliveries/DID --jq .request.payload | \\
      codemate webhook replay --event issue_comment --payload -`,
    )
    .action(verb(() => import('./commands/webhook.js'), 'replay'));

  program
    .command('completion')
    .argument('<shell>', 'bash, zsh or fish')
    .description('print a shell completion script')
    .addHelpText(
      'after',
      `
Commands, flags, and CodeMate names in the namespace of -n (or the context's) complete on TAB.

Examples:
  $ source <(codemate completion bash)          # in ~/.bashrc
  $ source <(codemate completion zsh)           # in ~/.zshrc
  $ codemate completion fish > ~/.config/fish/completions/codemate.fish`,
    )
    .action(async (shell: string) => {
      const { completionScript } = await import('./commands/completion.js');
      deps.out.data(completionScript(shell));
    });

  program
    .command('__complete', { hidden: true })
    .description('print the completions of the words after it, one a line (the completion scripts call it)')
    .argument('[words...]', 'the command line after `codemate`, the last word being completed')
    .helpOption(false)
    .allowUnknownOption()
    .action(async (words: string[]) => {
      const { complete } = await import('./commands/completion.js');
      for (const candidate of await complete(program, words)) deps.out.data(candidate);
    });

  for (const command of program.commands) command.exitOverride().configureOutput(program.configureOutput());
  return program;
}
