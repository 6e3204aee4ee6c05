import { Chalk, type ChalkInstance } from 'chalk';

/** How many colours a stream gets: none off a terminal, with NO_COLOR or --no-color; FORCE_COLOR wins. */
export function colorLevel(
  stream: { readonly isTTY?: boolean },
  env: NodeJS.ProcessEnv,
  colorFlag: boolean,
): 0 | 1 | 2 | 3 {
  if (!colorFlag) return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    return force === '2' || force === '3' ? (Number(force) as 2 | 3) : 1;
  }
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  return stream.isTTY ? 1 : 0;
}

export const chalkFor = (level: 0 | 1 | 2 | 3): ChalkInstance => new Chalk({ level });
