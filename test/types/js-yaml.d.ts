// js-yaml ships no types: what the tests use of it.
declare module 'js-yaml' {
  export function loadAll(text: string): unknown[];
}
