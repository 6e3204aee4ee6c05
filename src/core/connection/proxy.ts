import { BlockList, isIP } from 'node:net';
import { UsageError } from '../shared/errors.js';
import { maskUserInfo } from '../shared/mask-user-info.js';
import { isLoopback } from './hosts.js';

/** The proxy a run goes through: its URL as given (credentials and all), how it may be shown, and where it came from. */
export interface ProxyChoice {
  url: string;
  /** The URL with any credentials masked: `http://***@proxy:3128`. */
  shown: string;
  /** `--proxy`, the variable, or the config key that named it. */
  origin: string;
}

/**
 * The proxy for requests to `apiRoot`, as curl, gh and the AWS CLI pick it: `--proxy` (wins),
 * else HTTPS_PROXY for an https API (HTTP_PROXY for http), else the config file's; none for a
 * loopback API or a host NO_PROXY names. Variables are read in either case, lower case first.
 */
export function proxyFor(
  apiRoot: string,
  env: NodeJS.ProcessEnv,
  given?: { url: string; origin: string; fromFlag: boolean },
): ProxyChoice | undefined {
  // Checked even when it goes unused (a loopback API): its credentials must parse to be masked where the command line is shown.
  if (given) checkProxyUrl(given.url, given.origin);
  const target = new URL(apiRoot);
  if (isLoopback(target)) return undefined;
  const fromEnv = variable(env, target.protocol === 'https:' ? 'https_proxy' : 'http_proxy');
  const pick = given && (given.fromFlag || !fromEnv) ? given : fromEnv && { url: fromEnv.value, origin: fromEnv.name };
  if (!pick || bypassesProxy(target, variable(env, 'no_proxy')?.value ?? '')) return undefined;
  return { url: pick.url, shown: shownProxy(checkProxyUrl(pick.url, pick.origin)), origin: pick.origin };
}

/** A proxy URL, checked: http:// or https:// only (HTTP CONNECT proxies); `origin` names the option or variable at fault. */
export function checkProxyUrl(raw: string, origin: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(
      `${origin}: "${maskUserInfo(raw)}" is not a URL`,
      'give the proxy as a URL such as http://proxy.example.com:3128',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(
      `${origin}: unsupported proxy protocol "${url.protocol}"`,
      'only HTTP CONNECT proxies are supported: give an http:// or https:// URL',
    );
  }
  // A password holding `/`, `?` or `#` ends the host early: what follows would be taken for a path (and shown).
  if (url.pathname !== '/' || url.search || url.hash) {
    throw new UsageError(
      `${origin}: a proxy URL is scheme://[user:password@]host:port, and this one has more after the host`,
      'in a user name or password, write / as %2F, ? as %3F, # as %23 and @ as %40',
    );
  }
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    throw new UsageError(
      `${origin}: the proxy's user name or password holds a % that starts no escape`,
      'write % as %25 in a user name or password',
    );
  }
  return url;
}

/** A proxy URL as it may be printed: any user name and password become `***`. */
export function shownProxy(url: URL): string {
  const credentials = url.username || url.password ? '***@' : '';
  return `${url.protocol}//${credentials}${url.host}`;
}

/**
 * The texts that give a proxy's credentials away, to take out of everything a run prints: the
 * password (or a user name that stands alone, a token), the user-info as written, and the
 * base64 of the Basic token sent in Proxy-Authorization.
 */
export function proxySecrets(url: URL): string[] {
  if (!url.username && !url.password) return [];
  const user = decoded(url.username);
  const password = decoded(url.password);
  const secret = url.password ? [password, url.password] : [user, url.username];
  return [...secret, `${url.username}:${url.password}`, basicCredentials(url)].filter((text) => text !== '');
}

/** The Proxy-Authorization value for a proxy URL's credentials. */
export const proxyToken = (url: URL): string => `Basic ${basicCredentials(url)}`;

const basicCredentials = (url: URL) =>
  Buffer.from(`${decoded(url.username)}:${decoded(url.password)}`).toString('base64');

/** A user name or password as the proxy reads it; one with a stray % (refused by checkProxyUrl) as written. */
function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Whether NO_PROXY sends requests to `target` direct: a comma (or space) separated list of `*`
 * (everything), domains (`example.com` and `.example.com` both match it and its subdomains),
 * IP addresses, CIDR ranges, each optionally with `:port` (then only that port).
 */
export function bypassesProxy(target: URL, noProxy: string): boolean {
  const host = target.hostname
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  return noProxy
    .split(/[\s,]+/)
    .filter((entry) => entry !== '')
    .some((entry) => {
      if (entry === '*') return true;
      const { name, port: wanted } = splitPort(entry.toLowerCase());
      if (wanted !== undefined && wanted !== port) return false;
      if (name.includes('/')) return inRange(host, name);
      if (isIP(name)) return isIP(host) !== 0 && sameAddress(host, name);
      const domain = name.replace(/^\*?\./, '').replace(/\.$/, '');
      return domain !== '' && (host === domain || host.endsWith(`.${domain}`));
    });
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, a bare v6 address, or a CIDR range. */
function splitPort(entry: string): { name: string; port?: string } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed)
    return bracketed[2] === undefined ? { name: bracketed[1]! } : { name: bracketed[1]!, port: bracketed[2] };
  const withPort = /^([^:]+):(\d+)$/.exec(entry);
  if (withPort) return { name: withPort[1]!, port: withPort[2]! };
  return { name: entry };
}

function sameAddress(host: string, address: string): boolean {
  const list = new BlockList();
  list.addAddress(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  return list.check(host, isIP(host) === 6 ? 'ipv6' : 'ipv4');
}

function inRange(host: string, range: string): boolean {
  const [network, bits] = range.split('/');
  const family = isIP(network ?? '');
  const prefix = Number(bits);
  if (family === 0 || isIP(host) === 0 || !Number.isInteger(prefix)) return false;
  const list = new BlockList();
  try {
    list.addSubnet(network!, prefix, family === 6 ? 'ipv6' : 'ipv4');
  } catch {
    return false; // a prefix out of range matches nothing
  }
  return list.check(host, isIP(host) === 6 ? 'ipv6' : 'ipv4');
}

/** A variable by its lower-case name, else its upper-case one; empty counts as unset. */
function variable(env: NodeJS.ProcessEnv, lower: string): { name: string; value: string } | undefined {
  for (const name of [lower, lower.toUpperCase()]) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}
