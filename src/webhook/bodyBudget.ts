/**
 * How many body bytes the webhook holds in memory at once, across requests.
 *
 * A body's signature can be checked only once all of it has arrived, so until then every request is
 * unverified, GitHub's as much as anyone's. The budget is therefore charged with the bytes that have
 * actually arrived, never with the Content-Length a request claims: a client that sends headers and then
 * nothing holds nothing, and to hold memory it has to send it.
 *
 * Small bodies also get a reserve that large ones cannot use. The events the webhook routes (comments,
 * reviews, review comments, pull requests) are small: typical payloads are tens of KB, and GitHub caps a
 * comment or a pull request body at 65,536 characters, so even a comment and the body it belongs to, each
 * at the cap and each character escaped to six bytes (`\u003c`), come to under 800 KB. Large bodies
 * (GitHub allows 25 MB, e.g. pushes with many commits) are the cheap way to fill the budget; with the
 * reserve they cannot crowd those deliveries out. A larger routed body still works, from the shared part.
 */

export interface BodyBudgetLimits {
  /** Bytes held at once by all bodies together, before the reserve. */
  maxBufferedBytes: number;
  /** A body that declares at most this many bytes is small, and may also use the reserve. */
  smallBodyBytes: number;
  /** Room on top of `maxBufferedBytes` that only small bodies may use. */
  smallBodyReserveBytes: number;
}

/** One request's share: what its body has charged so far. */
export interface BodyAccount {
  /** Charges bytes that arrived; false (and nothing charged) when they do not fit. */
  charge(bytes: number): boolean;
  /** Gives back everything charged; later calls do nothing. */
  release(): void;
}

export class BodyBudget {
  private buffered = 0;

  constructor(private readonly limits: BodyBudgetLimits) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Whether a body of `length` bytes fits next to what is buffered now, so that one which cannot is
   * refused from its headers rather than halfway through. Only bytes that arrived count, so requests
   * that claim a length and send nothing cannot make another one fail here.
   */
  fits(length: number): boolean {
    return this.buffered + length <= this.ceiling(length);
  }

  /** An account for one body that declared `length` bytes (Node never delivers more than that). */
  open(length: number): BodyAccount {
    const ceiling = this.ceiling(length);
    let charged = 0;
    let released = false;
    return {
      charge: (bytes) => {
        if (released || this.buffered + bytes > ceiling) return false;
        this.buffered += bytes;
        charged += bytes;
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        this.buffered -= charged;
        charged = 0;
      },
    };
  }

  private ceiling(length: number): number {
    const { maxBufferedBytes, smallBodyBytes, smallBodyReserveBytes } = this.limits;
    return length <= smallBodyBytes ? maxBufferedBytes + smallBodyReserveBytes : maxBufferedBytes;
  }
}
