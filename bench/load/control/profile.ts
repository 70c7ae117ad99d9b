/**
 * Reads a V8 CPU profile (`node --cpu-prof`) of the relay, keeps the samples taken inside
 * the measurement window (profile timestamps and the generator's window edges are both
 * CLOCK_MONOTONIC microseconds), and summarises where the time went: by area (our
 * TypeScript per src/ folder, each npm package, Node internals, GC, idle), and by function,
 * self and inclusive. Positions in dist/*.js are mapped back to the TypeScript sources
 * through their source maps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  /** `name (src/sdp/parse.ts:97)` or `name (node:dgram)`. */
  name: string;
  area: string;
  selfPct: number;
  inclusivePct: number;
}

export interface ProfileSummary {
  /** Sampled time inside the window, ms. */
  sampledMs: number;
  samples: number;
  /** Share of the window per area, largest first. */
  areas: Array<{ area: string; pct: number }>;
  /** Functions by self time, largest first. */
  bySelf: FunctionTime[];
  /** Functions of our src/ by inclusive time, largest first. */
  ourByInclusive: FunctionTime[];
}

/** Where a profile frame lives, and how to print it. */
class FrameNamer {
  private readonly maps = new Map<string, SourceMap | null>();

  constructor(private readonly root: string) {}

  describe(frame: CallFrame): { area: string; name: string } {
    const fn = frame.functionName || '(anonymous)';
    if (frame.url === '') return { area: fn.startsWith('(') ? fn : 'V8/native', name: fn };
    if (frame.url.startsWith('node:')) return { area: 'node internals', name: `${fn} (${frame.url})` };
    const file = frame.url.startsWith('file://') ? fileURLToPath(frame.url) : frame.url;
    const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
    if (pkg) return { area: pkg[1], name: `${fn} (${pkg[1]})` };
    const where = this.original(file, frame.lineNumber, frame.columnNumber);
    const area = /^src\/([^/]+)\//.exec(where.file);
    return { area: area ? `src/${area[1]}` : where.file, name: `${fn} (${where.file}:${where.line})` };
  }

  private original(file: string, line: number, column: number): { file: string; line: number } {
    const map = this.sourceMap(file);
    const entry = map?.findEntry(line, column) as { originalSource?: string; originalLine?: number } | undefined;
    if (entry?.originalSource !== undefined && entry.originalLine !== undefined) {
      const source = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : resolve(dirname(file), entry.originalSource);
      return { file: relative(this.root, source), line: entry.originalLine + 1 };
    }
    return { file: relative(this.root, file), line: line + 1 };
  }

  private sourceMap(file: string): SourceMap | null {
    if (!this.maps.has(file)) {
      const path = `${file}.map`;
      let map: SourceMap | null = null;
      try {
        if (existsSync(path)) map = new SourceMap(JSON.parse(readFileSync(path, 'utf8')));
      } catch {
        map = null;
      }
      this.maps.set(file, map);
    }
    return this.maps.get(file) ?? null;
  }
}

/** Summarises the samples of `file` between the two CLOCK_MONOTONIC instants (µs). */
export function summariseProfile(file: string, root: string, fromUs: number, toUs: number, top: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const namer = new FrameNamer(root);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const described = new Map<number, { area: string; name: string }>();
  const describe = (id: number): { area: string; name: string } => {
    let d = described.get(id);
    if (!d) described.set(id, (d = namer.describe(byId.get(id)!.callFrame)));
    return d;
  };
  const self = new Map<string, { area: string; us: number }>();
  const inclusive = new Map<string, { area: string; us: number }>();
  const areas = new Map<string, number>();
  const add = (m: Map<string, { area: string; us: number }>, d: { area: string; name: string }, us: number): void => {
    const e = m.get(d.name);
    if (e) e.us += us;
    else m.set(d.name, { area: d.area, us });
  };
  let t = profile.startTime;
  let totalUs = 0;
  let samples = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    // a sample stands for the time until the next one
    const us = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0;
    if (t < fromUs || t > toUs || us <= 0) continue;
    samples++;
    totalUs += us;
    const leaf = describe(profile.samples[i]);
    add(self, leaf, us);
    areas.set(leaf.area, (areas.get(leaf.area) ?? 0) + us);
    const seen = new Set<string>();
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const d = describe(id);
      if (seen.has(d.name)) continue;
      seen.add(d.name);
      add(inclusive, d, us);
    }
  }
  const pct = (us: number): number => (totalUs === 0 ? 0 : (100 * us) / totalUs);
  const rows = (m: Map<string, { area: string; us: number }>, filter: (area: string) => boolean): FunctionTime[] =>
    [...m.entries()]
      .filter(([, e]) => filter(e.area))
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([name, e]) => ({ name, area: e.area, selfPct: pct(self.get(name)?.us ?? 0), inclusivePct: pct(inclusive.get(name)?.us ?? 0) }));
  return {
    sampledMs: totalUs / 1000,
    samples,
    areas: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, pct: pct(us) })),
    bySelf: rows(self, () => true),
    ourByInclusive: rows(inclusive, (area) => area.startsWith('src/')),
  };
}
