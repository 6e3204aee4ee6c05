import { isIP, connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Client, errors, type buildConnector } from 'undici';
import type { Clock } from '../shared/clock.js';
import { proxyToken } from '../connection/proxy.js';
import { isCertificateError, proxyRefusal } from './connect-errors.js';
import { CONNECTION_TIMEOUT_MS } from '../shared/connect-timeout.js';
import { isOutOfDescriptors } from '../files/descriptors.js';

/**
 * Where a connection being made is: DNS and TCP to the API's host, TLS with it; or, through a
 * proxy, DNS and TCP (and TLS) to the proxy, its answer to CONNECT, TLS through the tunnel.
 */
type Phase = 'host' | 'tls' | 'proxy' | 'proxy-answer' | 'proxy-tls';

/** Why no connection came: a code and words for the run's events and its stop. */
export interface ConnectFailure {
  code: string;
  message: string;
}

/** A connection that failed, named by the phase it failed in. */
class ConnectError extends Error {
  constructor(
    readonly code: string,
    message: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ConnectError';
  }
}

interface Opening {
  phase: Phase;
  /** The API's host (and port when not the default), for messages. */
  host: string;
  /** Set once the connection was made or given up. */
  ended: boolean;
  fail(error: Error): void;
}

/**
 * How a run opens its connections to the API, given to undici as its `connect` option: direct,
 * or through an HTTP CONNECT proxy (which resolves the API's host; TLS goes end to end through
 * the tunnel). Each connection is given up at CONNECTION_TIMEOUT_MS (or --timeout when
 * shorter) on the run's clock whatever its phase, and every one still being made is cut when
 * the run closes; a failure is named by its phase, a proxy's with a `proxy_` code.
 */
export class Connections {
  /** Connections being made, oldest first. */
  private readonly opening = new Set<Opening>();
  private readonly limitMs: number;

  constructor(private readonly options: { clock: Clock; timeoutMs: number; proxy?: URL }) {
    this.limitMs = Math.min(options.timeoutMs, CONNECTION_TIMEOUT_MS);
  }

  /** undici's `connect` option: opens one connection to the API and calls back once, with the socket or the reason there is none. */
  readonly connect = (target: buildConnector.Options, callback: buildConnector.Callback): void => {
    const held: Array<{ destroy(): unknown }> = [];
    const end = () => {
      opening.ended = true;
      cancelLimit();
      this.opening.delete(opening);
    };
    const opening: Opening = {
      phase: this.options.proxy ? 'proxy' : 'host',
      host: target.host ?? target.hostname,
      ended: false,
      fail: (error) => {
        if (opening.ended) return;
        end();
        for (const part of held) part.destroy();
        callback(error, null);
      },
    };
    const succeed = (socket: Socket) => {
      if (opening.ended) return void socket.destroy();
      end();
      callback(null, socket);
    };
    const cancelLimit = this.options.clock.after(this.limitMs, () => opening.fail(stallError(opening, this.limitMs)));
    this.opening.add(opening);
    // A part made after the connection was given up goes at once.
    const hold = <T extends { destroy(): unknown }>(part: T): T => (
      opening.ended ? part.destroy() : held.push(part),
      part
    );
    if (this.options.proxy) tunnel(target, this.options.proxy, { opening, hold, succeed, limitMs: this.limitMs });
    else direct(target, { opening, hold, succeed });
  };

  /** Why a request given up after `ms` without a connection had none: the phase the oldest connection being made is stuck in. */
  stalled(ms: number): ConnectFailure {
    const oldest = this.opening.values().next().value;
    if (!oldest) return { code: 'connect_timeout', message: `no connection within ${seconds(ms)}` };
    const { code, message } = stallError(oldest, ms);
    return { code, message };
  }

  /** Cuts every connection still being made: the run is over, and nothing of it may keep the process alive. */
  cutAll(): void {
    for (const opening of [...this.opening])
      opening.fail(new ConnectError('connection_cut', 'the connection was cut when the run ended'));
  }
}

interface Steps {
  opening: Opening;
  /** Keeps a part of the connection to destroy should it fail. */
  hold: <T extends { destroy(): unknown }>(part: T) => T;
  succeed: (socket: Socket) => void;
}

/**
 * TCP (and TLS) to the API's host; its errors keep their codes (ECONNREFUSED, ENOTFOUND, a
 * certificate's, …), a TLS failure's message says so in words.
 */
function direct(target: buildConnector.Options, { opening, hold, succeed }: Steps): void {
  const secure = target.protocol === 'https:';
  const socket = hold(
    open(target.hostname, Number(target.port) || (secure ? 443 : 80), secure ? serverName(target) : undefined),
  );
  socket.on('error', (error: Error & { code?: string }) => {
    const code = error.code ?? 'tls_failed';
    opening.fail(
      opening.phase === 'tls' && !isCertificateError(code)
        ? new ConnectError(code, `TLS with ${opening.host} failed: ${tlsReason(error)}`, error)
        : error,
    );
  });
  if (secure) socket.once('connect', () => (opening.phase = 'tls'));
  socket.once(secure ? 'secureConnect' : 'connect', () => {
    socket.removeAllListeners('error');
    succeed(socket);
  });
}

/**
 * TCP (and TLS) to the proxy, `CONNECT host:port` through an undici Client of its own on that
 * socket (undici parses the answer), then TLS with the API's host through the tunnel.
 */
function tunnel(target: buildConnector.Options, proxy: URL, steps: Steps & { limitMs: number }): void {
  const { opening, hold, succeed } = steps;
  const proxySecure = proxy.protocol === 'https:';
  const raw = hold(
    open(
      proxy.hostname.replace(/^\[|\]$/g, ''),
      Number(proxy.port) || (proxySecure ? 443 : 80),
      proxySecure ? nameOf(proxy.hostname) : undefined,
    ),
  );
  const onRawError = (error: Error) => opening.fail(proxyError(opening.phase, error));
  raw.on('error', onRawError);
  raw.once(proxySecure ? 'secureConnect' : 'connect', () => {
    opening.phase = 'proxy-answer';
    let handed = false;
    // The Client's one connection is the socket already open, handed over on the next tick
    // (undici expects its connector to call back later); it is never opened again.
    const client = new Client(proxy.origin, {
      connect: (_options, callback) => {
        const again = handed;
        handed = true;
        process.nextTick(() =>
          again
            ? callback(
                new ConnectError('proxy_closed', 'the proxy closed the connection without answering CONNECT'),
                null,
              )
            : callback(null, raw),
        );
      },
      // A second bound on the answer, in real time: undici wants whole milliseconds.
      headersTimeout: Math.max(1, Math.ceil(steps.limitMs)),
    });
    hold({ destroy: () => client.destroy().catch(() => {}) });
    const host = target.host ?? target.hostname;
    const authority = target.port ? host : `${host}:${target.protocol === 'https:' ? 443 : 80}`;
    const credentials = proxy.username !== '' || proxy.password !== '';
    client.connect(
      {
        path: authority,
        headers: { host: authority, ...(credentials && { 'proxy-authorization': proxyToken(proxy) }) },
      },
      (error, answer) => {
        // The tunnel's socket is no longer the Client's (or is gone): the Client has nothing left to close.
        void client.destroy().catch(() => {});
        if (error)
          return opening.fail(
            error instanceof errors.HeadersTimeoutError
              ? stallError(opening, steps.limitMs)
              : proxyError('proxy-answer', error),
          );
        const socket = answer.socket as Socket;
        if (opening.ended) return void socket.destroy();
        // undici took its own listeners off the socket when it handed it over; onRawError is still on it.
        if (answer.statusCode !== 200) {
          socket.destroy();
          return opening.fail(new ConnectError('proxy_refused', proxyRefusal(answer.statusCode)));
        }
        if (target.protocol !== 'https:') return succeed(socket);
        opening.phase = 'proxy-tls';
        const secured = hold(
          tlsConnect({
            socket,
            host: target.hostname,
            ALPNProtocols: ['http/1.1'],
            ...(serverName(target) && { servername: serverName(target) }),
          }),
        );
        secured.on('error', (tlsError: Error) => opening.fail(proxyError('proxy-tls', tlsError)));
        secured.once('secureConnect', () => {
          secured.removeAllListeners('error');
          succeed(secured);
        });
      },
    );
  });
}

/** A socket to `host:port`, TLS when `servername` is given (or '' for an IP address), HTTP/1.1 only. */
function open(host: string, port: number, servername: string | undefined): Socket {
  const socket =
    servername === undefined
      ? tcpConnect({ host, port })
      : tlsConnect({ host, port, ALPNProtocols: ['http/1.1'], ...(servername && { servername }) });
  return socket.setNoDelay(true).setKeepAlive(true, 60_000);
}

/** The name TLS checks the certificate against: none is sent for an IP address. */
const nameOf = (hostname: string): string => (isIP(hostname.replace(/^\[|\]$/g, '')) ? '' : hostname);
const serverName = (target: buildConnector.Options): string => target.servername || nameOf(target.hostname);

/** A failure through the proxy, named as the proxy's; a certificate error keeps its own name (and its own stop). */
function proxyError(phase: Phase, error: Error & { code?: string }): Error {
  const code = error.code ?? '';
  if (isCertificateError(code) || error instanceof ConnectError) return error;
  switch (phase) {
    case 'proxy':
      // No descriptor for the socket says nothing of the proxy: it keeps its code, and is waited out.
      if (isOutOfDescriptors(error)) return error;
      return new ConnectError('proxy_unreachable', `cannot connect to the proxy: ${error.message}`, error);
    case 'proxy-answer':
      if (error instanceof errors.HTTPParserError)
        return new ConnectError(
          'proxy_bad_answer',
          `the proxy answered something that is not HTTP${beginning((error as { data?: unknown }).data)}`,
          error,
        );
      return new ConnectError(
        'proxy_closed',
        `the proxy closed the connection without answering CONNECT (${error.message})`,
        error,
      );
    default:
      return new ConnectError(
        'proxy_tls',
        `TLS through the proxy failed: ${tlsReason(error)}${code ? ` (${code})` : ''}`,
        error,
      );
  }
}

/** The first printable words of what a proxy answered, to recognise it by (an SSH banner, say). */
function beginning(data: unknown): string {
  const start = (typeof data === 'string' ? data : '')
    .split(/[\r\n]/)[0]!
    .replace(/[^\x20-\x7e]/g, '')
    .trim()
    .slice(0, 40);
  return start ? ` (it began "${start}")` : '';
}

/** OpenSSL's reason ("wrong version number") rather than its whole line. */
const tlsReason = (error: Error & { reason?: unknown }): string =>
  typeof error.reason === 'string' ? error.reason : error.message;

/** A connection still in `opening.phase` after `ms`. */
function stallError(opening: Opening, ms: number): ConnectError {
  const within = `within ${seconds(ms)}`;
  switch (opening.phase) {
    case 'host':
      return new ConnectError('connect_timeout', `no connection to ${opening.host} ${within}`);
    case 'tls':
      return new ConnectError('tls_timeout', `the TLS handshake with ${opening.host} did not complete ${within}`);
    case 'proxy':
      return new ConnectError('proxy_timeout', `no connection to the proxy ${within}`);
    case 'proxy-answer':
      return new ConnectError('proxy_timeout', `the proxy did not answer CONNECT ${within}`);
    case 'proxy-tls':
      return new ConnectError('proxy_tls', `TLS through the proxy did not complete ${within}`);
  }
}

const seconds = (ms: number) => `${ms / 1000} s`;
