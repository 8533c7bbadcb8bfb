/** Time, injectable so tests can move it (greylisting, retries, lockouts). */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
