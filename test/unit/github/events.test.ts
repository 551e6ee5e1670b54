import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { routeEvent } from '../../../src/github/events.js';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples') as Array<{
  name: string;
  examples: Array<Record<string, unknown> & { action?: string }>;
}>;
const of = (name: string) => examples.find((e) => e.name === name)!.examples;

describe('routeEvent with real payloads from @octokit/webhooks-examples', () => {
  it('routes issue comments created on pull requests, and nothing else of issue_comment', () => {
    // The published examples are all on plain issues; GitHub marks a pull request's issue with
    // issue.pull_request, so one example is given that marker to stand for a PR comment.
    const created = of('issue_comment').find((p) => p.action === 'created')!;
    const onPullRequest = structuredClone(created);
    (onPullRequest.issue as { pull_request?: unknown }).pull_request = {
      url: 'https://api.github.com/repos/o/r/pulls/1',
    };
    const payloads = [...of('issue_comment'), onPullRequest];
    let routed = 0;
    for (const payload of payloads) {
      const routedEvent = routeEvent('issue_comment', payload as never);
      const onPr = Boolean((payload.issue as { pull_request?: unknown }).pull_request);
      if (payload.action === 'created' && onPr) {
        const comment = payload.comment as { id: number; body: string; user: { login: string } };
        routed += 1;
        expect(routedEvent).toMatchObject({
          kind: 'item',
          type: 'issue_comment',
          pullRequest: (payload.issue as { number: number }).number,
          item: { id: comment.id, body: comment.body, user: { login: comment.user.login } },
        });
      } else {
        expect(routedEvent.kind).toBe('ignored');
      }
    }
    expect(routed).toBe(1);
  });

  it('routes every submitted review and every created review comment to a poll for that review', () => {
    const reviews = of('pull_request_review');
    expect(reviews.filter((p) => p.action === 'submitted').length).toBeGreaterThan(0);
    for (const payload of reviews) {
      const routed = routeEvent('pull_request_review', payload as never);
      if (payload.action !== 'submitted') {
        expect(routed.kind).toBe('ignored');
        continue;
      }
      const review = payload.review as { id: number; user: { login: string } };
      // With a body or without: a review without one may still carry threads.
      expect(routed).toMatchObject({
        kind: 'review',
        repository: (payload.repository as { full_name: string }).full_name,
        pullRequest: (payload.pull_request as { number: number }).number,
        reviewId: review.id,
        author: review.user.login,
      });
    }
    expect(of('pull_request_review_comment').filter((p) => p.action === 'created').length).toBeGreaterThan(0);
    for (const payload of of('pull_request_review_comment')) {
      const routed = routeEvent('pull_request_review_comment', payload as never);
      if (payload.action === 'created') {
        const comment = payload.comment as { pull_request_review_id: number; user: { login: string } };
        // Keyed by the review the comment belongs to, as the submitted review is: one message for both.
        expect(routed).toMatchObject({
          kind: 'review',
          repository: (payload.repository as { full_name: string }).full_name,
          reviewId: comment.pull_request_review_id,
          author: comment.user.login,
        });
      } else {
        expect(routed.kind).toBe('ignored');
      }
    }
  });

  it('routes pull requests opening, reopening, closing and leaving draft, with the head branch only when not a fork', () => {
    for (const payload of of('pull_request')) {
      const routed = routeEvent('pull_request', payload as never);
      if (['opened', 'reopened', 'closed', 'ready_for_review'].includes(payload.action!)) {
        const pr = payload.pull_request as {
          number: number;
          head: { ref: string; repo: { full_name: string } };
        };
        const repo = (payload.repository as { full_name: string }).full_name;
        expect(routed).toMatchObject({
          kind: 'pull_request',
          action: payload.action,
          pullRequest: pr.number,
        });
        const sameRepo = pr.head.repo?.full_name === repo;
        expect(routed.kind === 'pull_request' && routed.headRef).toBe(sameRepo ? pr.head.ref : undefined);
      } else {
        expect(routed).toEqual({ kind: 'ignored', reason: `pull_request.${payload.action} is not routed` });
      }
    }
    const fork = structuredClone(of('pull_request').find((p) => p.action === 'opened')!);
    (fork.pull_request as { head: { repo: { full_name: string } } }).head.repo.full_name = 'someone/fork';
    expect(routeEvent('pull_request', fork as never)).not.toHaveProperty('headRef');
  });

  it('answers ping, and ignores other events and payloads without a repository, saying why', () => {
    expect(routeEvent('ping', of('ping')[0] as never)).toEqual({ kind: 'ping' });
    expect(routeEvent('push', of('push')[0] as never)).toEqual({
      kind: 'ignored',
      reason: 'push. is not routed',
    });
    expect(routeEvent('issue_comment', { action: 'created' })).toEqual({
      kind: 'ignored',
      reason: 'issue_comment.created has no repository',
    });
  });
});
