/** The candidate a value is probably a typo of (case aside), or undefined when none is close. */
export function closest(value: string, candidates: readonly string[]): string | undefined {
  const upper = value.toUpperCase();
  let best: string | undefined;
  // A few edits, more for longer names: "prd1" → prod1, "IMAGE_PASPORT_FRONT" → IMAGE_PASSPORT_FRONT.
  let bestDistance = Math.max(2, Math.floor(upper.length / 4)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(upper, candidate.toUpperCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
