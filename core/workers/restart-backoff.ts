/** The first restart of a worker that died waits this long. */
const FIRST_DELAY_MS = 250;
/** Each quick death doubles the wait, up to this. */
const MAX_DELAY_MS = 60_000;
/** A worker that served this long before it died starts the count again. */
const HEALTHY_AFTER_MS = 60_000;

/**
 * How long to wait before starting a dead worker again: at once (nearly) the
 * first time, then doubling while it keeps dying soon after it starts, so a
 * worker that cannot start (a broken plugin, a disk full) is not restarted in
 * a tight loop that floods the log and the machine.
 */
export class RestartBackoff {
  #quickDeaths = 0;

  /** The delay before the next start, given how long the dead worker had run. */
  next(ranMs: number): number {
    if (ranMs >= HEALTHY_AFTER_MS) this.#quickDeaths = 0;
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.#quickDeaths);
    this.#quickDeaths++;
    return delay;
  }
}
