/** What a redacted secret reads as. */
export const REDACTED = '[redacted]';

/** Replaces the secret in a text: the one step every text from outside passes before any output. */
export interface Redact {
  (text: string): string;
  /** The length of the longest form replaced: a text cut short may end in this much of one. */
  readonly longest: number;
}

/**
 * A redactor for the API key and any other secrets (a proxy's password): each as it is and in
 * the forms a server or gateway may echo it — JSON-escaped, percent-encoded (either case of
 * hex), HTML-escaped — becomes `[redacted]`.
 */
export function createRedactor(...secrets: string[]): Redact {
  const forms = [
    ...new Set(
      secrets
        .filter((secret) => secret !== '')
        .flatMap((secret) => [
          secret,
          JSON.stringify(secret).slice(1, -1),
          encodeURIComponent(secret),
          encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()),
          secret
            .replace(/&/g, '&amp;')
            .replace(/</g, '&lt;')
            .replace(/>/g, '&gt;')
            .replace(/"/g, '&quot;')
            .replace(/'/g, '&#39;'),
        ]),
    ),
  ].sort((a, b) => b.length - a.length); // longest first, so a form that holds another goes whole
  const redact = (text: string) => {
    let out = text;
    for (const form of forms) if (out.includes(form)) out = out.split(form).join(REDACTED);
    return out;
  };
  return Object.assign(redact, { longest: forms[0]?.length ?? 0 });
}

/** For callers with no secret to hide. */
export const NO_REDACTION: Redact = createRedactor('');
