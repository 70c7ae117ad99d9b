/**
 * Starts the SIP front from the configuration (--listen-sip, --proxy, --proxy-timeout,
 * --proxy-probe-interval, --proxy-probe-answers, --alternate-path, --sip-advertised) over the
 * relay's call model, with its metrics; null when --listen-sip is empty.
 */
import type pino from 'pino';
import type { CallRegistry } from '../calls/call-registry';
import type { Config } from '../config/options';
import { InvalidArgumentError } from '../errors';
import type { Metrics } from '../metrics/registry';
import { parseListenAddress } from '../ng/listen-address';
import { parseHostPorts, parseProxySpecs } from '../proxy-table/proxy-spec';
import { SipFront } from './front';
import { watchSipFront } from './metrics';

export async function startSipFront(config: Config, calls: CallRegistry, metrics: Metrics, log: pino.Logger): Promise<SipFront | null> {
  if (!config['listen-sip']) {
    if (config.proxy.length > 0) log.warn('--proxy is set but --listen-sip is not: the SIP front is off');
    return null;
  }
  const where = parseListenAddress(config['listen-sip']);
  if (where.address === '0.0.0.0' && !config['sip-advertised']) {
    throw new InvalidArgumentError('--listen-sip on every address needs --sip-advertised (the host written into Via and Record-Route)');
  }
  const sipLog = log.child({ source: 'sip' });
  const front = new SipFront(
    {
      address: where.address,
      port: where.port,
      advertised: config['sip-advertised'] || undefined,
      proxies: parseProxySpecs(config.proxy),
      proxyTimeoutMs: config['proxy-timeout'],
      probeIntervalMs: config['proxy-probe-interval'],
      probeAnswers: config['proxy-probe-answers'],
      alternates: parseHostPorts(config['alternate-path'], '--alternate-path'),
      log: (message, error) => (error ? sipLog.warn({ err: error }, message) : sipLog.info(message)),
    },
    calls,
  );
  const bound = await front.listen();
  watchSipFront(metrics, front);
  sipLog.info({ listen: bound, proxies: front.table?.proxies.map((p) => p.uri) ?? [], alternatePath: config['alternate-path'] }, 'SIP front started');
  return front;
}
