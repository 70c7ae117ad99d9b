/**
 * Turns the --ha-* options into a running HA node wired to the call model: every change of an
 * owned call publishes a new restoration record version, every ended call a delete.
 */
import os from 'node:os';
import type pino from 'pino';
import type { CallRegistry } from '../calls/call-registry';
import type { Config } from '../config/options';
import { ConfigError } from '../config/load';
import type { Relay } from '../native/relay';
import { CallBridge } from './call-bridge';
import { HaNode } from './ha-node';
import { SharedAddress } from './shared-address';

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
  const bridge = new CallBridge(calls, relay);
  const node = new HaNode({
    nodeId: config['ha-node-id'] || os.hostname(),
    priority: config['ha-priority'],
    mode: config['ha-mode'] as 'hot' | 'cold',
    listen: { address: listen.host, port: listen.port },
    peer: hostPort(config['ha-peer'], 'ha-peer'),
    keepaliveIntervalMs: config['ha-keepalive-interval'],
    missed: config['ha-missed'],
    sharedAddress: config['ha-vip'] ? new SharedAddress({ cidr: config['ha-vip'], device: config['ha-vip-dev'] }) : null,
    calls: bridge,
    initialRole: config['ha-role'] === 'auto' ? undefined : (config['ha-role'] as 'active' | 'standby'),
  });
  calls.on('changed', (call) => {
    if (node.role !== 'active' || call.standby) return;
    bridge.record(call, '', node.epoch).then(
      (record) => node.publish(record),
      (error: Error) => log.warn({ err: error, callId: call.callId }, 'restoration record not written'),
    );
  });
  calls.on('ended', (call) => {
    if (!call.standby) node.unpublish(call.callId);
  });
  node.on('role', (role, reason) => log.info({ role, reason, epoch: node.epoch }, 'HA role'));
  node.on('dropped', (ids) => log.warn({ calls: ids.length }, 'cold standby: calls dropped at takeover'));
  node.on('error', (error) => log.warn({ err: error }, 'HA'));
  await node.start();
  return node;
}
