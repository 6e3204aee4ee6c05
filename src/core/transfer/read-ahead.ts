/** How far ahead of the consumer items are taken: at most `items` of them, weighing at most `weight` together. */
export interface AheadLimits {
  items: number;
  weight: number;
}

/**
 * The source's items in order, taken before they are asked for, each handed to `prepare` as it
 * is taken, which says what it weighs (the bytes it reads, say): work for the next items
 * (reading their files) is under way while the current ones are sent. Items are taken one at a
 * time, so each is weighed before the next is taken; one heavier than the limit is taken when
 * those ahead of it weigh less.
 */
export async function* readAhead<T>(
  source: AsyncIterable<T>,
  limits: AheadLimits,
  prepare: (item: T) => number,
): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const ready: Array<{ item: T; weight: number }> = [];
  let weight = 0;
  let taking = false;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let finished = false;
  let wake: (() => void) | undefined;
  const arrived = () => {
    wake?.();
    wake = undefined;
  };
  const take = () => {
    if (taking || ended || failure || finished || ready.length >= limits.items || weight >= limits.weight) return;
    taking = true;
    iterator.next().then(
      (result) => {
        taking = false;
        if (result.done) ended = true;
        else if (!finished) {
          try {
            const itemWeight = prepare(result.value);
            ready.push({ item: result.value, weight: itemWeight });
            weight += itemWeight;
          } catch (error) {
            // Met by the consumer in its turn, like the source's own failure.
            failure = { error };
          }
        }
        arrived();
        take();
      },
      (error: unknown) => {
        taking = false;
        failure = { error };
        arrived();
      },
    );
  };
  try {
    for (;;) {
      take();
      const next = ready.shift();
      if (next) {
        weight -= next.weight;
        yield next.item;
        continue;
      }
      // The items before a failure of the source are all yielded first.
      if (failure) throw failure.error;
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    finished = true;
    await iterator.return?.();
  }
}
