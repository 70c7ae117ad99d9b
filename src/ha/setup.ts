/**
 * Turns the --ha-* options into a running HA node wired to the call model (record-publisher.ts:
 * every change of an owned call publishes a new restoration record version, every ended call a
 * delete) and to the log.
 */
import os from 'node:os';
import type pino from 'pino';
import type { CallRegistry } from '../calls/call-registry';
import type { Config } from '../config/options';
import { ConfigError } from '../config/load';
import type { Relay } from '../native/relay';
import { CallBridge } from './call-bridge';
import { HaNode } from './ha-node';
import { RecordPublisher } from './record-publisher';
import { SharedAddress, SharedAddressMethod } from './shared-address';

function hostPort(value: string, option: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new ConfigError(`--${option} must be HOST:PORT, not '${value}'`);
  return { host: m[1], port };
}

export async function startHa(config: Config, calls: CallRegistry, relay: Relay, log: pino.Logger): Promise<HaNode | null> {
  if (!config['ha-peer']) return null;
  if (config['ha-vip'] && !config['ha-vip-dev']) throw new ConfigError('--ha-vip needs --ha-vip-dev');
  const listen = hostPort(config['ha-listen'], 'ha-listen');
  const sharedAddress = config['ha-vip']
    ? new SharedAddress({ cidr: config['ha-vip'], device: config['ha-vip-dev'], method: config['ha-vip-method'] as SharedAddressMethod })
    : null;
  const bridge = new CallBridge(calls, relay, (error, callId) => log.warn({ err: error, callId }, 'standby call not restored'));
  const node = new HaNode({
    nodeId: config['ha-node-id'] || os.hostname(),
    priority: config['ha-priority'],
    mode: config['ha-mode'] as 'hot' | 'cold',
    listen: { address: listen.host, port: listen.port },
    peer: hostPort(config['ha-peer'], 'ha-peer'),
    keepaliveIntervalMs: config['ha-keepalive-interval'],
    missed: config['ha-missed'],
    sharedAddress,
    calls: bridge,
    initialRole: config['ha-role'] === 'auto' ? undefined : (config['ha-role'] as 'active' | 'standby'),
  });
  const publisher = new RecordPublisher(calls, bridge, node, (error, callId) => log.warn({ err: error, callId }, 'restoration record not written'));
  bridge.onAdopted = (call) => publisher.publish(call);
  node.on('role', (role, reason) => log.info({ role, reason, epoch: node.epoch }, 'HA role'));
  node.on('lost', (peer, loss) => log.warn({ peer: peer.node, peerRole: peer.role, ...loss }, 'HA peer lost'));
  node.on('dropped', (ids) => log.warn({ calls: ids.length }, 'cold standby: calls dropped at takeover'));
  // A resync after a split brain can refuse a record per call: the first error of each second is
  // logged, the others counted into the next one logged.
  let errorSecond = 0;
  let suppressed = 0;
  node.on('error', (error) => {
    const second = Math.floor(Date.now() / 1000);
    if (second === errorSecond) {
      suppressed++;
      return;
    }
    errorSecond = second;
    log.warn({ err: error, suppressed }, 'HA');
    suppressed = 0;
  });
  await node.start();
  if (sharedAddress?.fallback) log.warn({ reason: sharedAddress.fallback }, 'shared address added at takeover, not held on lo');
  return node;
}
