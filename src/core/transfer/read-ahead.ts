/**
 * The source's items in order, taken up to `ahead` before they are asked for, each handed to
 * `prepare` as it is taken: work for the next items (reading their files) is under way while
 * the current ones are sent, and items taken together are prepared together.
 */
export async function* readAhead<T>(source: AsyncIterable<T>, ahead: number, prepare: (item: T) => void): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const taken: Array<Promise<IteratorResult<T>>> = [];
  const take = () => {
    const next = iterator.next().then((result) => {
      if (!result.done) prepare(result.value);
      return result;
    });
    // Awaited in turn below; a failure of one taken ahead of a consumer that stopped is not unhandled.
    next.catch(() => {});
    taken.push(next);
  };
  try {
    for (;;) {
      // Refilled once half is used, so that items are taken (and prepared) several at a time.
      if (taken.length <= ahead / 2) while (taken.length < ahead) take();
      const result = await taken.shift()!;
      if (result.done) return;
      yield result.value;
    }
  } finally {
    await iterator.return?.();
  }
}
