/**
 * The candidate a mistyped name was most likely meant to be, for "did you
 * mean relay-access?" in error messages: the closest by edit distance
 * (insertions, deletions, substitutions and swaps of neighbours each cost
 * one), ignoring case, and only when it is close enough to be a typo rather
 * than another word.
 */
export function nearestName(name: string, candidates: Iterable<string>): string | undefined {
  const wanted = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(wanted, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  // A third of the longer name, at least one edit: `relay-acess` → relay-access, `tls` is not `dns`.
  const allowed = Math.max(1, Math.floor(Math.max(wanted.length, best.length) / 3));
  return bestDistance <= allowed ? best : undefined;
}

/** `: did you mean x?` when there is a near candidate, '' otherwise. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const near = nearestName(name, candidates);
  return near === undefined ? '' : `: did you mean ${near}?`;
}

/** Optimal string alignment distance (Damerau–Levenshtein without repeated edits of one substring). */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const columns = b.length + 1;
  const d: number[] = new Array<number>(rows * columns);
  for (let i = 0; i < rows; i++) d[i * columns] = i;
  for (let j = 0; j < columns; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < columns; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(d[(i - 1) * columns + j] + 1, d[i * columns + j - 1] + 1, d[(i - 1) * columns + j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, d[(i - 2) * columns + j - 2] + 1);
      d[i * columns + j] = value;
    }
  }
  return d[rows * columns - 1];
}
