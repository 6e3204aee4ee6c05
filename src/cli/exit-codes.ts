/** The exit codes of the command-line contract. */
export const EXIT = {
  ok: 0,
  someFailed: 1,
  badInput: 2,
  keyRefused: 3,
  interrupted: 130,
} as const;
