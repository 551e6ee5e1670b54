/**
 * Polls each monitored CodeMate's pull request for issue comments and reviews (each submitted review one
 * message, with its threads), with conditional requests so that an idle pull request costs nothing
 * against GitHub's rate limit. New items become CodeMateMessages (deterministic names, so a second create
 * is a harmless 409), with the trust policy's verdict. It also links a branch to its pull request and
 * records in status what it saw: the pull request's state, the token's login, status.lastMonitorCheck
 * (status.ts). It decides nothing: the reconcile applies the lifecycle policy when the pull request
 * closes. A new value of the codemate.io/poll-requested-at annotation (set by the webhook when a pull
 * request opens, reopens or closes, a review or review comment arrives, or a check fails) polls that
 * CodeMate at once. After the lists, prMonitor.ts looks for CI failures on the head and for the pull
 * request leaving draft.
 */
import { defaultPollIntervalSeconds, pollRequestedAnnotation, type CodeMate } from '../api/codemate.js';
import type { GitHubReviewComment } from '../api/github.js';
import { messageName, type CodeMateMessage } from '../api/message.js';
import { isUnauthorized, type GitHub } from '../clients/github.js';
import { isConflict, type Kube, type KubeObject } from '../clients/kube.js';
import { firstPolls, pollJitter } from '../config/defaults.js';
import { Spreader } from '../runtime/rate.js';
import { messageFor, notNewBecause, reviewMessageFor } from '../github/items.js';
import { parseRepository, type RepositoryRef } from '../github/repository.js';
import { errorFields, type Logger } from '../observability/log.js';
import type { Approvals } from './approvals.js';
import { GitHubAppError, type GitHubClients } from './githubClients.js';
import { pollChecksAndDraft } from './prMonitor.js';
import {
  recordGitHubAppError,
  recordGitHubObservation,
  shouldRecordObservation,
  type GitHubObservation,
} from './status.js';

export interface PollerOptions {
  kube: Kube;
  logger: Logger;
  github: GitHubClients;
  codemate: (namespace: string, name: string) => CodeMate | undefined;
  /** True when the message already exists (in the delivery worker's cache). */
  hasMessage: (namespace: string, name: string) => boolean;
  /** Looks for approvals of the comments that wait for one (approvals.ts). */
  approvals?: Approvals;
  /** An unchanged poll is written only when status.lastMonitorCheck is this old (0: every poll). */
  monitorReportSeconds: number;
}

interface Target {
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  uid: string;
  /** The last poll request (annotation value) seen. */
  requested: string | undefined;
  /** A poll was requested while one was running: poll again right after it. */
  again: boolean;
  /** spec.monitoring.intervalSeconds when the timer was set, and when the last poll started. */
  intervalSeconds: number;
  lastPollAt: number | undefined;
  /** Reviews that left nothing to say (see pollReviews). */
  settledReviews: Set<number>;
}

export class Poller {
  private readonly targets = new Map<string, Target>();
  private stopped = false;
  /**
   * First polls are spread: a burst of new CodeMates (a thousand applied at once) would otherwise spend
   * a thousand charged GitHub calls, and as many status writes, within seconds, on the same cores as
   * their pods. A few start at once; the rest follow at `firstPolls.perSecond`. The webhook delivers
   * their comments meanwhile, and a poll it requests is not held back.
   */
  private readonly firstPolls = new Spreader(firstPolls.burst, firstPolls.perSecond);

  constructor(private readonly options: PollerOptions) {}

  /** Starts, keeps or stops the timer of one CodeMate after any change to it. */
  sync(namespace: string, name: string): void {
    if (this.stopped) return;
    const key = `${namespace}/${name}`;
    const cm = this.options.codemate(namespace, name);
    const monitored =
      cm &&
      !cm.metadata.deletionTimestamp &&
      cm.spec.monitoring?.enabled !== false &&
      parseRepository(cm.spec.repository.url);
    const existing = this.targets.get(key);
    if (!monitored) {
      if (existing) clearTimeout(existing.timer);
      this.targets.delete(key);
      return;
    }
    const requested = cm.metadata.annotations?.[pollRequestedAnnotation];
    const intervalSeconds = intervalOf(cm);
    if (existing && existing.uid === cm.metadata.uid) {
      if (intervalSeconds !== existing.intervalSeconds) {
        // A new interval counts from the last poll, not from when the old timer was set.
        existing.intervalSeconds = intervalSeconds;
        if (!existing.running) {
          clearTimeout(existing.timer);
          const since = Date.now() - (existing.lastPollAt ?? 0);
          this.schedule(key, existing, Math.max(0, this.intervalMs(cm) - since));
        }
      }
      if (requested === existing.requested) return;
      existing.requested = requested;
      if (existing.running) existing.again = true;
      else {
        clearTimeout(existing.timer);
        this.schedule(key, existing, 0);
      }
      return;
    }
    if (existing) clearTimeout(existing.timer);
    const target: Target = {
      timer: undefined,
      running: false,
      uid: cm.metadata.uid,
      requested,
      again: false,
      intervalSeconds,
      lastPollAt: undefined,
      settledReviews: new Set(),
    };
    this.targets.set(key, target);
    this.schedule(key, target, this.firstPolls.take());
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.targets.values()) clearTimeout(t.timer);
    this.targets.clear();
  }

  private schedule(key: string, target: Target, delayMs: number): void {
    if (this.stopped || this.targets.get(key) !== target) return;
    target.timer = setTimeout(() => void this.tick(key, target), delayMs);
    target.timer.unref();
  }

  private intervalMs(cm: CodeMate): number {
    const base = intervalOf(cm) * 1000;
    return Math.round(base * (1 - pollJitter + Math.random() * 2 * pollJitter));
  }

  private async tick(key: string, target: Target): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const cm = this.options.codemate(namespace, name);
    if (!cm || target.running) return;
    target.running = true;
    target.lastPollAt = Date.now();
    try {
      await this.poll(cm);
    } catch (error) {
      this.options.logger.warn(
        { codemate: key, ...errorFields(error) },
        'polling the pull request failed; trying again next interval',
      );
    } finally {
      target.running = false;
      const latest = this.options.codemate(namespace, name);
      if (latest) this.schedule(key, target, target.again ? 0 : this.intervalMs(latest));
      target.again = false;
    }
  }

  async poll(cm: CodeMate): Promise<void> {
    try {
      await this.pollWithToken(cm);
    } catch (error) {
      if (error instanceof GitHubAppError) {
        await recordGitHubAppError(this.options.kube, cm, error);
      } else if (isUnauthorized(error)) {
        // Forget the login and the client, so that a replaced token is asked again from scratch.
        this.options.github.forget();
        const ref = cm.spec.github.tokenSecretRef;
        await recordGitHubObservation(this.options.kube, cm, {
          github: {
            login: null,
            error: ref
              ? `GitHub rejected the token in secret ${ref.name} (key ${ref.key ?? 'token'}): 401 Bad credentials`
              : "GitHub rejected the App's installation token: 401 Bad credentials",
            errorReason: null,
            hint: null,
          },
        });
      }
      throw error;
    }
  }

  private async pollWithToken(cm: CodeMate): Promise<void> {
    const repo = parseRepository(cm.spec.repository.url)!;
    const { gh, self } = await this.options.github.forCodeMate(cm);
    const number =
      cm.spec.repository.pullRequest ?? cm.status?.pullRequest?.number ?? (await this.discover(cm, gh, repo));
    const now = new Date().toISOString();
    if (!number) {
      await this.record(cm, now, {
        lastMonitorCheck: now,
        github: { login: self, error: null, errorReason: null, hint: null },
      });
      return;
    }
    const pr = await gh.pullRequest(repo.owner, repo.repo, number);
    const comments = await gh.issueComments(repo.owner, repo.repo, number);
    for (const item of comments) {
      if (notNewBecause(cm, 'issue_comment', item)) continue;
      await this.createNew(cm, messageFor(cm, 'issue_comment', item, number, self));
    }
    await this.options.approvals?.check(cm, gh, repo, comments, self);
    await this.pollReviews(cm, gh, repo, number, self);
    const notices = await pollChecksAndDraft(
      { logger: this.options.logger, hasMessage: this.options.hasMessage, create: (m) => this.create(m) },
      cm,
      gh,
      repo,
      pr,
      now,
    );
    await this.record(cm, now, {
      lastMonitorCheck: now,
      github: { login: self, error: null, errorReason: null, hint: null, ...notices },
      pullRequest: {
        number: pr.number,
        url: pr.url,
        state: pr.state,
        draft: pr.draft,
        headSha: pr.headSha,
        // The branch this session writes to, for one writer per branch; a fork's head is not ours.
        ...(pr.headRepository?.toLowerCase() === `${repo.owner}/${repo.repo}`.toLowerCase()
          ? { headRef: pr.headRef }
          : {}),
      },
    });
  }

  private async record(cm: CodeMate, now: string, observation: GitHubObservation): Promise<void> {
    const reportMs = this.options.monitorReportSeconds * 1000;
    if (!shouldRecordObservation(cm.status, observation, new Date(now), reportMs)) return;
    await recordGitHubObservation(this.options.kube, cm, observation);
  }

  /**
   * Each submitted review becomes one message with its body and its threads, built from the pull
   * request's review comments. Those are listed only when a review is new, so an idle pull request costs
   * the one conditional listing of its reviews. A review that leaves nothing to say is remembered, and
   * not asked about again while the operator runs.
   */
  private async pollReviews(
    cm: CodeMate,
    gh: GitHub,
    repo: RepositoryRef,
    number: number,
    self: string,
  ): Promise<void> {
    const settled = this.settledReviews(cm);
    const fresh = (await gh.reviews(repo.owner, repo.repo, number)).filter(
      (review) =>
        review.state !== 'PENDING' &&
        !settled.has(review.id) &&
        !notNewBecause(cm, 'review', review) &&
        !this.options.hasMessage(
          cm.metadata.namespace,
          messageName(cm.metadata.name, 'review', String(review.id)),
        ),
    );
    let comments: GitHubReviewComment[] | undefined;
    for (const review of fresh) {
      // The session's own review has nothing for it in its threads: it had the last word in each.
      const own = review.user?.login.toLowerCase() === self.toLowerCase();
      if (own && !review.body.trim()) {
        settled.add(review.id);
        continue;
      }
      if (!own) comments ??= await gh.reviewComments(repo.owner, repo.repo, number);
      const message = reviewMessageFor(cm, review, own ? [] : (comments ?? []), number, self);
      if (message) await this.createNew(cm, message);
      else settled.add(review.id);
    }
  }

  private settledReviews(cm: CodeMate): Set<number> {
    return this.targets.get(`${cm.metadata.namespace}/${cm.metadata.name}`)?.settledReviews ?? new Set();
  }

  private async createNew(cm: CodeMate, message: CodeMateMessage): Promise<void> {
    if (this.options.hasMessage(cm.metadata.namespace, message.metadata.name)) return;
    await this.create(message);
  }

  private async discover(cm: CodeMate, gh: GitHub, repo: RepositoryRef): Promise<number | undefined> {
    const branch = cm.spec.repository.branch;
    if (!branch) return undefined;
    return (await gh.findPullRequest(repo.owner, repo.repo, branch))?.number;
  }

  private async create(message: CodeMateMessage): Promise<void> {
    try {
      await this.options.kube.create(message as unknown as KubeObject);
      this.options.logger.info(
        {
          codemate: `${message.metadata.namespace}/${message.spec.codemate}`,
          message: message.metadata.name,
          trusted: message.spec.trust?.allowed,
        },
        message.spec.source.type === 'ci_failure' || message.spec.source.type === 'ready_for_review'
          ? `new ${message.spec.source.type} notice`
          : 'new pull request item',
      );
    } catch (error) {
      if (!isConflict(error)) throw error;
    }
  }
}

function intervalOf(cm: CodeMate): number {
  return cm.spec.monitoring?.intervalSeconds ?? defaultPollIntervalSeconds;
}
