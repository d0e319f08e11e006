/** Full-jitter exponential backoff: a delay drawn uniformly from [0, min(max, base·2^attempt)]. */

export interface BackoffOptions {
  /** First ceiling, ms (default 500). */
  readonly baseMs: number;
  /** Largest ceiling, ms (default 20,000). */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 20_000 };

export function fullJitter(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
