import { closest } from '../shared/did-you-mean.js';
import type { ObjectType } from '../inputs/objects.js';
import { UsageError } from '../shared/errors.js';
import { textProblem } from '../shared/well-formed.js';

/** Unit21's hosts by environment name. */
export const HOSTS = {
  prod1: 'https://api.unit21.com',
  prod2: 'https://api.prod2.unit21.com',
  prod3: 'https://api.prod1.eu-central-1.unit21.com',
  sandbox1: 'https://sandbox1-api.unit21.com',
  sandbox2: 'https://sandbox2-api.unit21.com',
  sandbox3: 'https://api.sandbox1.eu-central-1.unit21.com',
} as const;

export type EnvName = keyof typeof HOSTS;
export const ENV_NAMES = Object.keys(HOSTS) as EnvName[];

/** Whether a URL's host is loopback, the only place plain HTTP may carry the key. */
export function isLoopback(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * The API root (ending in `/v1`) from `--base-url` (wins) or `--env`. Refuses plain HTTP
 * to anything but loopback, since the key travels in a header.
 */
export function resolveApiRoot(options: { env?: string; baseUrl?: string }): string {
  const { env, baseUrl } = options;
  let raw: string;
  if (baseUrl) raw = baseUrl;
  else if (env) {
    if (!(env in HOSTS)) {
      const near = closest(env, ENV_NAMES);
      throw new UsageError(
        `--env: unknown environment "${env}"${near ? `; did you mean ${near}?` : ''}`,
        `use one of ${ENV_NAMES.join(', ')}, or --base-url`,
      );
    }
    raw = HOSTS[env as EnvName];
  } else {
    throw new UsageError(
      'no Unit21 host given',
      `pass --env (${ENV_NAMES.join(', ')}) or --base-url, or set U21_ENV / U21_BASE_URL`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--base-url: "${raw}" is not a URL`, 'give a full URL such as https://api.unit21.com');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UsageError(`--base-url: unsupported protocol "${url.protocol}"`, 'use https://');
  }
  if (url.protocol === 'http:' && !isLoopback(url)) {
    throw new UsageError(
      `--base-url: refusing plain http:// to ${url.host}; the API key would travel unencrypted`,
      'use https:// (plain http is allowed only for loopback, e.g. the local sandbox)',
    );
  }
  if (url.search || url.hash) {
    throw new UsageError(
      `--base-url: "${raw}" has a query or fragment`,
      'give only the scheme, host and optional path',
    );
  }
  const path = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  return `${url.origin}${path}/v1`;
}

/** What says where a run sends: the org, and the host by --base-url (wins) or --env. */
export interface TargetSettings {
  org?: string | undefined;
  env?: string | undefined;
  baseUrl?: string | undefined;
}

/**
 * Where a run sends, checked: the API root (see resolveApiRoot) and the org. The one check of
 * both: upload() refuses without them, and the CLI calls it once, before its first line, so that
 * a dry run proves the real command would start and says where it would send.
 */
export function resolveTarget(target: TargetSettings): { apiRoot: string; org: string } {
  return { apiRoot: resolveApiRoot(target), org: checkedOrg(target.org) };
}

/** The org name, refused when missing or a path step. */
export function checkedOrg(org: string | undefined): string {
  if (!org)
    throw new UsageError(
      '--org is required',
      'pass your Unit21 org name with --org, U21_ORG or "org" in the config file',
    );
  if (org === '.' || org === '..')
    throw new UsageError(`--org: "${org}" is not an org name`, 'pass the org_name Unit21 gave you');
  const notText = textProblem(org, '--org');
  if (notText) throw new UsageError(notText, 'pass the org_name Unit21 gave you');
  return org;
}

/** Percent-encodes an id as exactly one path segment (callers refuse `.` and `..`, which no URL keeps). */
export const pathSegment = (id: string): string => encodeURIComponent(id);

/** URL of the link-media endpoint of an entity or an event (under the org), or of an alert or a case (by unit21_id, no org). */
export function mediaUrl(
  apiRoot: string,
  org: string,
  id: string,
  objectType: ObjectType | undefined = 'entities',
): string {
  const owner = objectType === 'alerts' || objectType === 'cases' ? '' : `/${pathSegment(org)}`;
  return `${apiRoot}${owner}/${objectType}/${pathSegment(id)}/link-media`;
}
