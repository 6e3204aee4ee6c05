import type { Command, Option } from 'commander';
import { UPLOAD_OPTIONS, flagOf } from '../core/options.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** A command as completion sees it: its words, its flags, and the values some flags take. */
interface Completable {
  path: string[];
  description: string;
  subcommands: Completable[];
  /** Whether it takes paths as arguments. */
  takesPaths: boolean;
  /** The values its argument takes, when they are a fixed few (`completion bash`). */
  argumentChoices: readonly string[];
  /** `value`: what a flag's value completes to: its choices, paths, or nothing (an id, a number). */
  flags: Array<{ long: string; short?: string; description: string; value?: 'path' | readonly string[] }>;
}

/**
 * The completion script for a shell, from the program's own commands and options (commander's
 * tree, walked): a flag added to the option table completes without touching this file.
 */
export function completionScript(program: Command, shell: Shell): string {
  const tree = completableOf(program, []);
  return shell === 'fish' ? fishScript(tree) : shell === 'zsh' ? zshScript(tree) : bashScript(tree);
}

function completableOf(command: Command, path: string[]): Completable {
  const choicesOf = (option: Option) =>
    UPLOAD_OPTIONS.find((spec) => path[0] === 'upload' && flagOf(spec) === option.long)?.choices;
  return {
    path,
    description: command.description(),
    subcommands: command.commands.map((sub) => completableOf(sub, [...path, sub.name()])),
    takesPaths: command.registeredArguments.some((argument) => /path|file/.test(argument.name())),
    argumentChoices: command.registeredArguments.flatMap((argument) => argument.argChoices ?? []),
    // commander adds --help itself, when it parses: it is not among the options yet.
    flags: [
      ...command.options.flatMap((option) => {
        if (!option.long || option.hidden) return [];
        const value: 'path' | readonly string[] | undefined =
          choicesOf(option) ?? (/<(file|path|folder)>/.test(option.flags) ? 'path' : undefined);
        return [
          {
            long: option.long,
            ...(option.short && { short: option.short }),
            description: option.description,
            ...(value && { value }),
            ...(!value && (option.required || option.optional) && { value: [] }),
          },
        ];
      }),
      { long: '--help', short: '-h', description: 'display help' },
    ],
  };
}

const all = (tree: Completable): Completable[] => [tree, ...tree.subcommands.flatMap(all)];
const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** bash: the words typed so far pick the command; a flag that takes a value completes its choices, or files. */
function bashScript(tree: Completable): string {
  const cases = all(tree).map((node) => {
    const words = [
      ...node.subcommands.map((s) => s.path.at(-1)!),
      ...node.argumentChoices,
      ...node.flags.flatMap((f) => (f.short ? [f.long, f.short] : [f.long])),
    ];
    const values = node.flags.flatMap((f) =>
      f.value ? [`        ${[f.long, f.short].filter(Boolean).join('|')}) ${compgen(f.value)}; return ;;`] : [],
    );
    const files = node.takesPaths ? '\n      [[ "$cur" != -* ]] && COMPREPLY+=($(compgen -f -- "$cur"))' : '';
    const byPrevious = values.length > 0 ? `      case "$prev" in\n${values.join('\n')}\n      esac\n` : '';
    return `    ${quote(node.path.join(' '))})\n${byPrevious}      COMPREPLY=($(compgen -W ${quote(words.join(' '))} -- "$cur"))${files} ;;`;
  });
  const commands = all(tree)
    .filter((n) => n.path.length > 0)
    .map((n) => quote(n.path.join(' ')));
  return `# u21-media completion for bash: eval "$(u21-media completion bash)" in ~/.bashrc
_u21_media() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" path="" next i
  # The command so far: the words before the cursor that name subcommands.
  for ((i = 1; i < COMP_CWORD; i++)); do
    next="\${path:+$path }\${COMP_WORDS[i]}"
    case "$next" in
      ${commands.join('|')}) path="$next" ;;
    esac
  done
  case "$path" in
${cases.join('\n')}
  esac
}
complete -o filenames -F _u21_media u21-media
`;
}

/** The bash words a flag's value completes to: nothing for an id or a number. */
const compgen = (value: 'path' | readonly string[]) =>
  value === 'path'
    ? 'COMPREPLY=($(compgen -f -- "$cur"))'
    : value.length > 0
      ? `COMPREPLY=($(compgen -W ${quote(value.join(' '))} -- "$cur"))`
      : 'COMPREPLY=()';

/** zsh runs the bash function through its bash-completion layer, the common way for tools that are not zsh-native. */
function zshScript(tree: Completable): string {
  return `#compdef u21-media
# u21-media completion for zsh: eval "$(u21-media completion zsh)" in ~/.zshrc
autoload -U +X bashcompinit && bashcompinit
${bashScript(tree).split('\n').slice(1).join('\n')}`;
}

/** fish: one `complete` line per subcommand and per flag, each with its description. */
function fishScript(tree: Completable): string {
  const lines = [
    '# u21-media completion for fish: u21-media completion fish > ~/.config/fish/completions/u21-media.fish',
    'complete -c u21-media -f',
  ];
  for (const node of all(tree)) {
    const condition =
      node.path.length === 0 ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${node.path.at(-1)!}`;
    for (const choice of node.argumentChoices) lines.push(`complete -c u21-media -n ${quote(condition)} -a ${choice}`);
    for (const sub of node.subcommands)
      lines.push(`complete -c u21-media -n ${quote(condition)} -a ${sub.path.at(-1)!} -d ${quote(sub.description)}`);
    for (const flag of node.flags) {
      const short = flag.short ? ` -s ${flag.short.slice(1)}` : '';
      const value =
        flag.value === 'path'
          ? ' -r -F'
          : flag.value && flag.value.length > 0
            ? ` -x -a ${quote(flag.value.join(' '))}`
            : flag.value
              ? ' -x'
              : '';
      lines.push(
        `complete -c u21-media -n ${quote(condition)} -l ${flag.long.slice(2)}${short}${value} -d ${quote(flag.description)}`,
      );
    }
    if (node.takesPaths) lines.push(`complete -c u21-media -n ${quote(condition)} -F`);
  }
  return `${lines.join('\n')}\n`;
}
