/**
 * One control-rate trial: a fresh relay process, a fresh generator process, one live-call
 * count, one measurement. After the window (live calls still up) the relay's open
 * descriptors, threads and RSS are read from /proc. Whatever fails, both processes are
 * stopped and the failure is returned, not thrown.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { GuardedChild } from '../child';
import { nodeCommandFor } from '../paths';
import { residentBytes } from '../proc-stats';
import type { ClientKind } from './load-client';
import { settingsToArgs, toLoadResult, type LoadResult } from './load-protocol';
import { openDescriptors, threadCount } from './proc';
import { portRange, type ControlRelay, type RelayFamily, type RunningControlRelay } from './relays';

export interface TrialSettings {
  guard: string;
  generatorCpu: number;
  nice: number;
  concurrency: number;
  setupConcurrency: number;
  warmupMs: number;
  windowMs: number;
  client: ClientKind;
  timeoutMs: number;
  attempts: number;
}

export interface TrialMeasurement {
  ok: true;
  relay: RelayFamily;
  live: number;
  workers: number;
  commandLine: string;
  load: LoadResult;
  /** Open descriptors, threads and RSS of the relay with the live calls up. */
  descriptors: number | null;
  threads: number | null;
  rssBytes: number | null;
  warnings: string[];
  /** Runs of this trial: more than one when other processes disturbed the earlier windows. */
  attempts: number;
  /** The V8 CPU profile written by the relay, when one was asked for. */
  profileFile?: string;
}

export interface TrialFailure {
  ok: false;
  relay: RelayFamily;
  live: number;
  error: string;
}

export type TrialResult = TrialMeasurement | TrialFailure;

/** Generous: rtpengine and rtphub both set up about a thousand calls a second here. */
const SETUP_MS_PER_CALL = 10;
const SETUP_BASE_MS = 30_000;

export async function runTrial(relay: ControlRelay, live: number, s: TrialSettings, profileDir?: string): Promise<TrialResult> {
  let running: RunningControlRelay | null = null;
  let generator: GuardedChild | null = null;
  try {
    const maxCalls = live + s.concurrency;
    running = await relay.start({ maxCalls, ...portRange(maxCalls), profileDir });
    generator = startGenerator(running, live, s);
    const load = await readResult(generator, live, s);
    const pid = running.pid;
    const measured = { descriptors: openDescriptors(pid), threads: threadCount(pid), rssBytes: safeRss(pid) };
    const warnings = await running.warnings();
    await generator.stop(null, 1000);
    await running.stop();
    return {
      ok: true,
      relay: relay.family,
      live,
      workers: running.workers,
      commandLine: running.commandLine,
      load,
      ...measured,
      warnings,
      attempts: 1,
      profileFile: profileDir ? newestProfile(profileDir) : undefined,
    };
  } catch (err) {
    await generator?.stop(null, 1000);
    await running?.stop();
    return { ok: false, relay: relay.family, live, error: err instanceof Error ? err.message : String(err) };
  }
}

function startGenerator(relay: RunningControlRelay, live: number, s: TrialSettings): GuardedChild {
  const { command, args } = nodeCommandFor(join('control', 'generator'));
  const settings = settingsToArgs({
    port: relay.ngPort,
    relayPid: relay.pid,
    live,
    setupConcurrency: s.setupConcurrency,
    concurrency: s.concurrency,
    warmupMs: s.warmupMs,
    windowMs: s.windowMs,
    client: s.client,
    timeoutMs: s.timeoutMs,
    attempts: s.attempts,
  });
  const lifetimeMs = SETUP_BASE_MS + live * SETUP_MS_PER_CALL + s.warmupMs + s.windowMs + 60_000;
  return GuardedChild.spawn({
    cpu: s.generatorCpu,
    nice: s.nice,
    maxSeconds: Math.ceil(lifetimeMs / 1000),
    guard: s.guard,
    command,
    args: [...args, ...settings],
    label: 'control generator',
  });
}

/** The generator's setup line, then its result; an {"error"} line fails the trial. */
async function readResult(generator: GuardedChild, live: number, s: TrialSettings): Promise<LoadResult> {
  const setup = await generator.readJson(SETUP_BASE_MS + live * SETUP_MS_PER_CALL, 'setup of the live calls');
  if (typeof setup.error === 'string') throw generator.failure(setup.error);
  const drainMs = s.timeoutMs * s.attempts * 3;
  const message = await generator.readJson(s.warmupMs + s.windowMs + drainMs + 15_000, 'measurement');
  if (typeof message.error === 'string') throw generator.failure(message.error);
  if (typeof message.result !== 'object' || message.result === null) throw generator.failure('no result');
  return toLoadResult(message.result as Record<string, unknown>);
}

function safeRss(pid: number): number | null {
  try {
    return residentBytes(pid);
  } catch {
    return null;
  }
}

function newestProfile(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  return files.length === 0 ? undefined : join(dir, files[files.length - 1]);
}
