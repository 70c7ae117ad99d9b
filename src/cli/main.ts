/**
 * The `rtphub` command. `rtphub [flags]` loads the configuration and starts the relay: the data
 * plane, the call model, the ng control socket and (with --listen-http) Prometheus metrics; it
 * shuts down cleanly (every call ended, every port freed) on SIGINT or SIGTERM.
 * `rtphub ctl …` is an ng client for operators (see ctl.ts).
 */
import fs from 'node:fs';
import pino from 'pino';
import { CallRegistry } from '../calls/call-registry';
import { loadConfig, mediaInterfaces } from '../config/load';
import { Config } from '../config/options';
import { Metrics, MetricsServer } from '../metrics/registry';
import { Relay } from '../native/relay';
import type { LearningMode } from '../native/types';
import { Dispatcher } from '../ng/dispatcher';
import { parseListenAddress } from '../ng/listen-address';
import { NgServer } from '../ng/server';
import { ctl } from './ctl';
import { watchNgServer } from '../metrics/ng';
import { haCli } from '../ha/admin';
import type { HaNode } from '../ha/ha-node';
import { startHa } from '../ha/setup';
import { CallBridge } from '../ha/call-bridge';
import { RedisStore } from '../store/redis-store';
import { CallRecords, startRecords } from '../records/call-records';
import { sipCli } from '../sip/admin';
import type { SipFront } from '../sip/front';
import { startSipFront } from '../sip/start';
import os from 'node:os';

const pinoLevels = ['fatal', 'fatal', 'fatal', 'error', 'warn', 'info', 'info', 'debug'] as const;

export interface Running {
  relay: Relay;
  calls: CallRegistry;
  ng: NgServer;
  metrics: Metrics;
  http: MetricsServer | null;
  ha: HaNode | null;
  store: RedisStore | null;
  records: CallRecords | null;
  sip: SipFront | null;
  stop(): Promise<void>;
}

export async function start(config: Config, log: pino.Logger): Promise<Running> {
  const interfaces = mediaInterfaces(config);
  const relay = Relay.start({
    interfaces: interfaces.map((i) => i.address),
    portMin: config['port-min'],
    portMax: config['port-max'],
    threads: config['num-threads'] || undefined,
    backend: config.backend as 'auto' | 'io_uring' | 'epoll' | 'af_xdp',
    coalesceUs: config['coalesce-us'],
    xdpDevices: config['xdp-dev'],
    xdpFrames: config['xdp-frames'],
    xdpRingSize: config['xdp-ring-size'],
    xdpUdpChecksum: config['xdp-udp-checksum'],
    learningWindowMs: config['learning-window-ms'],
  });
  const calls = new CallRegistry({
    relay,
    interfaces,
    learning: config['endpoint-learning'] as LearningMode,
    maxSessions: Math.max(0, config['max-sessions']),
    timeouts: {
      timeout: config.timeout,
      silentTimeout: config['silent-timeout'],
      offerTimeout: config['offer-timeout'],
      finalTimeout: config['final-timeout'],
      deleteDelay: config['delete-delay'],
    },
  });
  calls.on('ended', (call, reason) => {
    if (reason !== 'deleted' && reason !== 'shutdown') log.info({ callId: call.callId, reason }, 'call ended by timeout');
  });
  let ha: HaNode | null = null;
  let sip: SipFront | null = null;
  let store: RedisStore | null = null;
  const dispatcher = new Dispatcher({ calls, relay, cli: (args) => (args[0] === 'proxies' ? sipCli(sip)(args) : haCli(ha)(args)) });
  const ng = new NgServer({
    handler: dispatcher.handler,
    listenNg: config['listen-ng'] || null,
    listenTcpNg: config['listen-tcp-ng'] || null,
    onEvent: (e) => log[e.level]({ source: e.source, err: e.error }, e.message),
  });
  const metrics = new Metrics();
  metrics.watchRelay(relay);
  watchNgServer(metrics, ng, calls);
  const records = await startRecords(config, calls, relay, metrics, log, () => ha);
  let http: MetricsServer | null = null;
  try {
    await ng.listen();
    sip = await startSipFront(config, calls, metrics, log);
    if (config['listen-http']) {
      const where = parseListenAddress(config['listen-http']);
      http = await metrics.listen(where.address, where.port);
    }
    ha = await startHa(config, calls, relay, log);
    store = await startStore(config, calls, relay, log);
  } catch (error) {
    await sip?.close();
    await store?.close();
    await ha?.close();
    await http?.close();
    await ng.close();
    await records?.close();
    await relay.close();
    throw error;
  }
  const info = relay.info();
  log.info({ ...info, interfaces, ng: ng.addresses(), http: http?.address ?? null }, 'relay started');
  // af_xdp reports what it chose (modes, devices); the others only why they fell back.
  if (info.backend === 'af_xdp') log.info({ note: info.backendNote }, 'af_xdp backend');
  else if (info.backendNote) log.warn({ note: info.backendNote }, 'preferred backend unavailable');
  if (config.pidfile) fs.writeFileSync(config.pidfile, `${process.pid}\n`);
  const stop = async (): Promise<void> => {
    await sip?.close();
    await store?.close();
    await ha?.close();
    await ng.close();
    await http?.close();
    await calls.closeAll();
    // after the calls: the calls a shutdown ends get their records too
    await records?.close();
    await relay.close();
    if (config.pidfile) fs.rmSync(config.pidfile, { force: true });
    log.info('relay stopped');
  };
  return { relay, calls, ng, metrics, http, ha, store, sip, records, stop };
}

async function startStore(config: Config, calls: CallRegistry, relay: Relay, log: pino.Logger): Promise<RedisStore | null> {
  if (!config.redis) return null;
  const store = new RedisStore({
    url: config.redis,
    nodeId: config['ha-node-id'] || os.hostname(),
    calls,
    bridge: new CallBridge(calls, relay),
    leaseMs: config['redis-lease-ms'],
    expireSeconds: config['redis-expires'],
  });
  store.on('error', (error) => log.warn({ err: error }, 'redis'));
  store.on('adopted', (from, ids) => log.warn({ from, calls: ids.length }, 'adopted the calls of a failed relay'));
  await store.start();
  return store;
}

function serve(argv: string[]): void {
  let config: Config;
  try {
    config = loadConfig(argv);
  } catch (error) {
    process.stderr.write(`rtphub: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const log = pino({ name: 'rtphub', level: pinoLevels[config['log-level']] });
  start(config, log).then(
    (running) => {
      let stopping = false;
      const shutdown = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'shutting down');
        running.stop().then(
          () => process.exit(0),
          (error: Error) => {
            log.error({ err: error }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
    },
    (error: Error) => {
      log.fatal({ err: error }, 'cannot start');
      process.exit(1);
    },
  );
}

export function main(argv: string[]): void {
  if (argv[0] === 'ctl') {
    ctl(argv.slice(1)).then(
      (code) => process.exit(code),
      (error: Error) => {
        process.stderr.write(`rtphub ctl: ${error.message}\n`);
        process.exit(1);
      },
    );
    return;
  }
  serve(argv);
}
