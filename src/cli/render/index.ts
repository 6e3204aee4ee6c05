import { EXIT } from '../exit-codes.js';
import type { Renderer, RenderOptions } from './renderer.js';

export async function createRenderer(options: RenderOptions): Promise<Renderer> {
  // --json needs neither chalk nor the progress line.
  return options.json ? createJsonRenderer(options) : (await import('./human.js')).createHumanRenderer(options);
}

/** `--json`: every event as a line on stdout; attempts only with --verbose. */
function createJsonRenderer({ stdout, verbose }: RenderOptions): Renderer {
  return {
    event: (event) => {
      stdout.check();
      if (event.event !== 'attempt' || verbose) stdout.json(event);
    },
    total: () => {},
    summary: (summary) => {
      // Exit 3 is said as an event too, as exit 2 is (cli.ts): scripts read one shape of refusal.
      if ('stopped' in summary && summary.stopped === 'auth')
        stdout.json({
          event: 'error',
          code: EXIT.keyRefused,
          problems: [
            {
              message: 'the API refused the key; the run stopped',
              hint: 'check the key, and that it has access to the org',
            },
          ],
        });
      stdout.json(summary);
      stdout.flush();
    },
    close: () => stdout.flush(),
  };
}
