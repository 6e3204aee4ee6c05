/**
 * Maps an async source with up to `limit` calls in flight, yielding results in source order.
 * Pull-based: nothing is read ahead of the consumer by more than `limit` items.
 */
export async function* mapOrdered<T, R>(
  source: AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const pending: Array<Promise<R>> = [];
  for await (const item of source) {
    pending.push(fn(item));
    if (pending.length >= limit) yield await pending.shift()!;
  }
  while (pending.length > 0) yield await pending.shift()!;
}
