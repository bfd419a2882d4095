// Reconnect delays, as the design note gives them: after the n-th
// consecutive failure, min(1 s · 2^(n−1) + 0–1 s jitter, 30 s); after a
// `1012` restart a short random delay (0–250 ms) so a restarted gateway is
// not hit by every client in the same millisecond.

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  jitterMs: number;
  restartJitterMs: number;
}

export const BACKOFF_DEFAULTS: BackoffOptions = { baseMs: 1_000, capMs: 30_000, jitterMs: 1_000, restartJitterMs: 250 };

/** The delay after `failures` (≥ 1) consecutive failures, given a jitter draw in [0, 1). */
export function reconnectDelay(failures: number, draw: number, options: BackoffOptions = BACKOFF_DEFAULTS): number {
  const doublings = Math.min(Math.max(failures - 1, 0), 31);
  return Math.min(options.baseMs * 2 ** doublings + draw * options.jitterMs, options.capMs);
}

/** The delay of a background attempt while polling: the capped step. */
export function cappedDelay(draw: number, options: BackoffOptions = BACKOFF_DEFAULTS): number {
  return reconnectDelay(Number.MAX_SAFE_INTEGER, draw, options);
}

/** The delay before reconnecting after a restart close. */
export function restartDelay(draw: number, options: BackoffOptions = BACKOFF_DEFAULTS): number {
  return draw * options.restartJitterMs;
}
