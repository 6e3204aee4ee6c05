import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/shared/errors.js';
import { bypassesProxy, checkProxyUrl, proxyFor, proxySecrets, shownProxy } from '../../src/core/connection/proxy.js';
import { createRedactor } from '../../src/core/shared/redact.js';
import { describeNetworkError } from '../../src/core/transfer/connect-errors.js';

const API = 'https://api.unit21.com/v1';

describe('NO_PROXY', () => {
  const direct = (url: string, noProxy: string) => bypassesProxy(new URL(url), noProxy);

  it.each([
    ['*', true],
    ['api.unit21.com', true],
    ['unit21.com', true], // a bare domain matches its subdomains
    ['.unit21.com', true],
    ['*.unit21.com', true],
    ['API.Unit21.COM', true],
    ['example.com, unit21.com', true],
    ['example.com unit21.com', true],
    ['api.unit21.com:443', true],
    ['api.unit21.com:8443', false],
    ['21.com', false], // a suffix must end at a dot
    ['i.unit21.com', false],
    ['other.unit21.com', false],
    ['', false],
    [' , ', false],
  ])('"%s" for https://api.unit21.com → direct: %s', (noProxy, expected) => {
    expect(direct(API, noProxy)).toBe(expected);
  });

  it('matches IP addresses exactly, CIDR ranges, and IPv6 with or without brackets and port', () => {
    expect(direct('https://10.1.2.3/v1', '10.1.2.3')).toBe(true);
    expect(direct('https://10.1.2.3/v1', '10.1.2.4')).toBe(false);
    expect(direct('https://10.1.2.3/v1', '10.0.0.0/8')).toBe(true);
    expect(direct('https://11.1.2.3/v1', '10.0.0.0/8')).toBe(false);
    expect(direct('https://10.1.2.3:8443/v1', '10.1.2.3:8443')).toBe(true);
    expect(direct('https://[2001:db8::1]/v1', '2001:db8::1')).toBe(true);
    expect(direct('https://[2001:db8::1]/v1', '[2001:db8::1]:443')).toBe(true);
    expect(direct('https://[2001:db8::1]/v1', '2001:db8::/32')).toBe(true);
    expect(direct('https://[2001:db9::1]/v1', '2001:db8::/32')).toBe(false);
    expect(direct('https://10.1.2.3/v1', '10.0.0.0/99, 10.1.2')).toBe(false); // nonsense matches nothing
  });

  it('compares the default port of the scheme when the URL names none', () => {
    expect(direct('http://example.com/v1', 'example.com:80')).toBe(true);
    expect(direct('https://example.com/v1', 'example.com:80')).toBe(false);
  });
});

describe('the proxy for the API', () => {
  it('takes HTTPS_PROXY for an https API, in either case, lower case first', () => {
    expect(proxyFor(API, { HTTPS_PROXY: 'http://upper:3128' })).toEqual({
      url: 'http://upper:3128',
      shown: 'http://upper:3128',
      origin: 'HTTPS_PROXY',
    });
    expect(proxyFor(API, { https_proxy: 'http://lower:3128', HTTPS_PROXY: 'http://upper:3128' })?.origin).toBe(
      'https_proxy',
    );
    expect(proxyFor(API, { HTTP_PROXY: 'http://plain:3128' })).toBeUndefined();
    expect(proxyFor(API, { HTTPS_PROXY: '' })).toBeUndefined();
  });

  it('lets --proxy win over the variables, and the variables over the config file', () => {
    const env = { HTTPS_PROXY: 'http://env:3128' };
    expect(proxyFor(API, env, { url: 'http://flag:3128', origin: '--proxy', fromFlag: true })?.url).toBe(
      'http://flag:3128',
    );
    expect(proxyFor(API, env, { url: 'http://config:3128', origin: 'rc: "proxy"', fromFlag: false })?.url).toBe(
      'http://env:3128',
    );
    expect(proxyFor(API, {}, { url: 'http://config:3128', origin: 'rc: "proxy"', fromFlag: false })?.url).toBe(
      'http://config:3128',
    );
  });

  it('goes direct to a host NO_PROXY names (whichever way the proxy was given) and to loopback always', () => {
    expect(proxyFor(API, { HTTPS_PROXY: 'http://p:3128', no_proxy: 'unit21.com' })).toBeUndefined();
    expect(
      proxyFor(API, { NO_PROXY: '*' }, { url: 'http://p:3128', origin: '--proxy', fromFlag: true }),
    ).toBeUndefined();
    expect(proxyFor('http://127.0.0.1:8080/v1', { HTTP_PROXY: 'http://p:3128' })).toBeUndefined();
    expect(
      proxyFor('http://localhost:8080/v1', {}, { url: 'http://p:3128', origin: '--proxy', fromFlag: true }),
    ).toBeUndefined();
  });

  it('refuses a proxy that is not an http(s) URL, naming where it came from, without echoing credentials', () => {
    const refusal = (url: string, origin: string) => {
      try {
        proxyFor(API, { HTTPS_PROXY: url }, origin === 'HTTPS_PROXY' ? undefined : { url, origin, fromFlag: true });
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        return (error as UsageError).message;
      }
      throw new Error('not refused');
    };
    expect(refusal('socks5://p:1080', '--proxy')).toBe('--proxy: unsupported proxy protocol "socks5:"');
    expect(refusal('proxy.example.com:3128', 'HTTPS_PROXY')).toMatch(/^HTTPS_PROXY: unsupported proxy protocol/);
    expect(refusal('http://user:s3cret@[bad', '--proxy')).toBe('--proxy: "http://***@[bad" is not a URL');
    expect(() => checkProxyUrl('https://proxy:3128', '--proxy')).not.toThrow();
  });

  it('shows credentials as *** and redacts the password, alone, as written and as the Basic token', () => {
    const url = new URL('http://alice:p%40ss%3Aw0rd@proxy.corp:3128');
    expect(shownProxy(url)).toBe('http://***@proxy.corp:3128');
    expect(shownProxy(new URL('http://token@proxy.corp:3128/'))).toBe('http://***@proxy.corp:3128');
    const redact = createRedactor('the-api-key', ...proxySecrets(url));
    const token = Buffer.from('alice:p@ss:w0rd').toString('base64');
    expect(redact(`p@ss:w0rd p%40ss%3Aw0rd alice:p%40ss%3Aw0rd ${token} the-api-key`)).toBe(
      '[redacted] [redacted] [redacted] [redacted] [redacted]',
    );
    // A user name standing alone is the secret (a token).
    expect(createRedactor(...proxySecrets(new URL('http://t0ken@proxy:3128')))('sent t0ken')).toBe('sent [redacted]');
    expect(proxySecrets(new URL('http://proxy:3128'))).toEqual([]);
  });

  it('names a proxy that refuses the tunnel, which undici tells only in words', () => {
    expect(describeNetworkError(new Error('Proxy response (407) !== 200 when HTTP Tunneling'))).toEqual({
      code: 'proxy_refused',
      message: expect.stringMatching(/asked for credentials \(407\)/),
    });
    expect(describeNetworkError(new Error('Proxy response (502) !== 200 when HTTP Tunneling'))).toEqual({
      code: 'proxy_refused',
      message: 'the proxy refused the tunnel: it answered 502',
    });
    expect(
      describeNetworkError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })),
    ).toEqual({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:9' });
  });
});
