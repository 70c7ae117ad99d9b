/**
 * The `rtphub` command: loads the configuration, starts the relay, logs JSON lines, and shuts
 * down cleanly (every stream closed, every port freed) on SIGINT or SIGTERM.
 */
import fs from 'node:fs';
import pino from 'pino';
import { loadConfig, mediaInterfaces } from '../config/load';
import { Config } from '../config/options';
import { Relay } from '../native/relay';

const pinoLevels = ['fatal', 'fatal', 'fatal', 'error', 'warn', 'info', 'info', 'debug'] as const;

export interface Running {
  relay: Relay;
  config: Config;
  stop(): Promise<void>;
}

export async function start(config: Config, log: pino.Logger): Promise<Running> {
  const interfaces = mediaInterfaces(config);
  const relay = Relay.start({
    interfaces: interfaces.map((i) => i.address),
    portMin: config['port-min'],
    portMax: config['port-max'],
    threads: config['num-threads'] || undefined,
    backend: config.backend as 'auto' | 'io_uring' | 'epoll',
    coalesceUs: config['coalesce-us'],
    learningWindowMs: config['learning-window-ms'],
  });
  const info = relay.info();
  log.info({ ...info, interfaces, portMin: config['port-min'], portMax: config['port-max'] }, 'relay started');
  if (info.backendNote) log.warn({ note: info.backendNote }, 'preferred backend unavailable');
  if (config.pidfile) fs.writeFileSync(config.pidfile, `${process.pid}\n`);
  const stop = async (): Promise<void> => {
    await relay.close();
    if (config.pidfile) fs.rmSync(config.pidfile, { force: true });
    log.info('relay stopped');
  };
  return { relay, config, stop };
}

export function main(argv: string[]): void {
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
