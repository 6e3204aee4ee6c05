import { createServer as createHttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Server as ProxyServer } from 'proxy-chain';
import { closeAfter } from './helpers.js';

/** The password the proxy wants of user alice. */
export const PROXY_PASSWORD = 'pr0xy-s3cret-pw';

/** What the proxy was asked: each CONNECT target and the credentials it came with. */
export interface ProxyLog {
  connects: string[];
  credentials: string[];
}

/**
 * A real HTTP CONNECT proxy (proxy-chain) on loopback that wants user alice with
 * PROXY_PASSWORD and tunnels every CONNECT to `port` on 127.0.0.1, whatever host it names;
 * closed after the test. `url()` is its URL with alice's credentials (or `userInfo`).
 */
export async function connectProxyTo(port: number): Promise<{ url: (userInfo?: string) => string; log: ProxyLog }> {
  const log: ProxyLog = { connects: [], credentials: [] };
  // proxy-chain hands a tunnel's socket to an http.Server; this one's HTTP parsing is taken off, so it only pipes the bytes on.
  const forwarder = createHttpServer();
  forwarder.removeAllListeners('connection');
  forwarder.on('connection', (socket: Socket) => {
    const upstream = connect(port, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  const proxy = new ProxyServer({
    port: 0,
    host: '127.0.0.1',
    prepareRequestFunction: ({ request, username, password }) => {
      log.connects.push(`${request.method} ${request.url}`);
      log.credentials.push(`${username}:${password}`);
      if (username !== 'alice' || password !== PROXY_PASSWORD) return { requestAuthentication: true };
      return { customConnectServer: forwarder };
    },
  });
  await proxy.listen();
  closeAfter({ close: () => proxy.close(true) });
  return { url: (userInfo = `alice:${PROXY_PASSWORD}`) => `http://${userInfo}@127.0.0.1:${proxy.port}`, log };
}
