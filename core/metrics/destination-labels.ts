/** Deliveries a destination must have had before it may get a label of its own. */
const ADMIT_AFTER = 10;

/** Destinations with a label of their own in the delivery metrics, unless admin.metricsDestinations says otherwise. */
export const DEFAULT_DESTINATION_LABELS = 100;

/** The label for every destination without one of its own. */
export const OTHER_DESTINATION = 'other';

/**
 * Caps the `destination` label of the delivery metrics: each label value is
 * a time series in Prometheus, and a server that sends to every domain on
 * the Internet would otherwise create one per domain, without end. The
 * busiest destinations get their own label, at most `limit` of them; the
 * rest are counted as `other`.
 *
 * "Busiest" is counted with a bounded table of candidates (the
 * space-saving algorithm: when the table is full, the least counted
 * candidate makes room and the newcomer inherits its count as a possible
 * error, so any destination with more than 1/(8 × limit) of the traffic is
 * sure to be in the table). A candidate with ADMIT_AFTER deliveries beyond
 * its possible error gets a label while fewer than `limit` have one, and
 * keeps it until the process ends (a series that stopped would look like a
 * destination that stopped).
 */
export class DestinationLabels {
  readonly #admitted = new Set<string>();
  readonly #candidates = new Map<string, { count: number; error: number }>();
  readonly #maxCandidates: number;

  constructor(readonly limit: number) {
    this.#maxCandidates = Math.max(64, limit * 8);
  }

  /** The label value for one delivery to `destination` (counting the delivery). */
  label(destination: string): string {
    if (this.#admitted.has(destination)) return destination;
    if (this.#admitted.size >= this.limit) return OTHER_DESTINATION;
    const { count, error } = this.#count(destination);
    if (count - error < ADMIT_AFTER) return OTHER_DESTINATION;
    this.#admitted.add(destination);
    this.#candidates.delete(destination);
    return destination;
  }

  #count(destination: string): { count: number; error: number } {
    const known = this.#candidates.get(destination);
    if (known !== undefined) {
      known.count++;
      return known;
    }
    let inherited = 0;
    if (this.#candidates.size >= this.#maxCandidates) {
      let least: string | undefined;
      for (const [candidate, entry] of this.#candidates) {
        if (least === undefined || entry.count < inherited) {
          least = candidate;
          inherited = entry.count;
        }
      }
      this.#candidates.delete(least as string);
    }
    const entry = { count: inherited + 1, error: inherited };
    this.#candidates.set(destination, entry);
    return entry;
  }
}
