/**
 * GitHub webhook signature verification through @octokit/webhooks: X-Hub-Signature-256 over the raw
 * body bytes, compared in constant time, against each accepted secret (several allow rotation).
 */
import { Webhooks } from '@octokit/webhooks';

/** The only shape of X-Hub-Signature-256 GitHub sends. */
export const signaturePattern = /^sha256=[0-9a-f]{64}$/;

export class SignatureVerifier {
  private readonly verifiers: Webhooks[];

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('at least one webhook secret is required');
    this.verifiers = secrets.map((secret) => new Webhooks({ secret }));
  }

  /** True when `signature` (the X-Hub-Signature-256 header) matches the raw body under any secret. */
  async verify(rawBody: string, signature: string | undefined): Promise<boolean> {
    if (!signature || !signaturePattern.test(signature)) return false;
    for (const verifier of this.verifiers) {
      if (await verifier.verify(rawBody, signature).catch(() => false)) return true;
    }
    return false;
  }
}

/** The X-Hub-Signature-256 GitHub would send for `body` under `secret` (for replaying saved payloads). */
export async function signPayload(secret: string, body: string): Promise<string> {
  return new Webhooks({ secret }).sign(body);
}
