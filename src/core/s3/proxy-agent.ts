import { Agent as HttpAgent, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Agent, type AgentConnectOpts } from 'agent-base';
import { HttpsProxyAgent } from 'https-proxy-agent';

/** The proxy (a URL, credentials and all) for requests to a URL, or none: decided as for Unit21's host (core/connection/proxy.ts). */
export type ProxyDecision = (url: string) => string | undefined;

/** Connections to one host at a time, as the SDK's own agents allow. */
const MAX_SOCKETS = 50;

/**
 * The agent the S3 client connects with: each connection goes through the proxy `proxyFor`
 * names for its host, tunnelled with CONNECT (https-proxy-agent), or direct; both kinds are
 * kept alive and reused, per host, by agents of their own.
 */
export class ProxyChoosingAgent extends Agent {
  private readonly direct: HttpAgent;
  private readonly tunnels = new Map<string, HttpsProxyAgent<string>>();

  constructor(
    private readonly proxyFor: ProxyDecision,
    secure: boolean,
  ) {
    super({ keepAlive: true });
    this.direct = secure
      ? new HttpsAgent({ keepAlive: true, maxSockets: MAX_SOCKETS })
      : new HttpAgent({ keepAlive: true, maxSockets: MAX_SOCKETS });
  }

  /** The agent that makes this request's connection: the one for its host's proxy, or the direct one. */
  connect(_request: ClientRequest, options: AgentConnectOpts): HttpAgent {
    const proxy = this.proxyFor(`${options.secureEndpoint ? 'https' : 'http'}://${options.host}:${options.port}`);
    if (proxy === undefined) return this.direct;
    let tunnel = this.tunnels.get(proxy);
    if (!tunnel) this.tunnels.set(proxy, (tunnel = tunnelThrough(proxy)));
    return tunnel;
  }

  override destroy(): void {
    this.direct.destroy();
    for (const tunnel of this.tunnels.values()) tunnel.destroy();
    super.destroy();
  }
}

/**
 * A CONNECT tunnel through `proxy`, its credentials sent in a header rather than in the URL
 * the agent keeps: its debug output (DEBUG=https-proxy-agent) shows that URL, never a password.
 */
function tunnelThrough(proxy: string): HttpsProxyAgent<string> {
  const url = new URL(proxy);
  const credentials =
    url.username || url.password
      ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
      : undefined;
  url.username = '';
  url.password = '';
  const headers =
    credentials === undefined
      ? undefined
      : { 'Proxy-Authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
  return new HttpsProxyAgent(url.href, { keepAlive: true, maxSockets: MAX_SOCKETS, ...(headers && { headers }) });
}
