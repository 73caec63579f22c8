// Plans built by hand (no compiler), temporary projects, and event capture.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOutputRef, type OutputRef, type Plan, type Resources, type StageInstance, type Value } from '../../src/compiler/plan.js';
import { EventBus, type RunEvent } from '../../src/runtime/events.js';

export interface StageSpec {
  id: string;
  stage?: string;
  matrix?: Record<string, Value>;
  kind?: string;
  kindVersion?: number;
  params: Record<string, Value>;
  inputs?: string[];
  env?: string[];
  resources?: Partial<Resources>;
  retries?: number;
  after?: string[];
  executor?: string;
}

export function ref(instance: string, output = 'out'): OutputRef {
  return { $ref: { instance, output } };
}

function collectRefs(v: Value, out: OutputRef['$ref'][]): void {
  if (isOutputRef(v)) {
    if (!out.some((r) => r.instance === v.$ref.instance && r.output === v.$ref.output)) out.push(v.$ref);
    return;
  }
  if (Array.isArray(v)) v.forEach((x) => collectRefs(x, out));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => collectRefs(x, out));
}

/** An exec stage's params with the schema defaults the compiler would fill in. */
export function exec(argv: (string | OutputRef)[] | string, more: Record<string, Value> = {}): Record<string, Value> {
  return { argv, shell: typeof argv === 'string', inputs: [], outputs: [], env: {}, cwd: '.', ...more };
}

export function makePlan(projectDir: string, specs: StageSpec[]): Plan {
  const instances: StageInstance[] = specs.map((s) => {
    const refs: OutputRef['$ref'][] = [];
    collectRefs(s.params, refs);
    const inputs = s.inputs ?? (Array.isArray(s.params.inputs) ? (s.params.inputs as string[]) : []);
    return {
      id: s.id,
      stage: s.stage ?? s.id.replace(/\[.*$/, ''),
      matrix: s.matrix ?? {},
      kind: s.kind ?? 'exec',
      kindVersion: s.kindVersion ?? 1,
      params: s.params,
      refs,
      after: s.after ?? [],
      inputs,
      env: s.env ?? [],
      resources: { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0, ...s.resources },
      retries: s.retries ?? 0,
      executor: s.executor,
      span: { file: join(projectDir, 'p.smke'), line: 1, column: 1, offset: 0, length: 1 },
    };
  });
  return { file: join(projectDir, 'p.smke'), projectDir, profile: 'mini', params: {}, instances, sources: [] };
}

/**
 * In `dir`, a file of i bytes and a directory for each of several times (seconds) whose nanosecond
 * parts do not round evenly to a double of milliseconds, where Node's view of a time and the
 * kernel's can differ.
 */
export function pathsAtOddTimes(dir: string): { file: string; dir: string; size: number }[] {
  const times = [0.000123, 1.5, 1_000_000_000.123456, 1_796_610_958.401244, 2_000_000_000.999999, Date.now() / 1000];
  return times.map((t, i) => {
    const file = join(dir, `f${i}`);
    writeFileSync(file, 'x'.repeat(i));
    utimesSync(file, t, t);
    const d = join(dir, `d${i}`);
    mkdirSync(d);
    utimesSync(d, t, t);
    return { file, dir: d, size: i };
  });
}

export function tempProject(prefix = 'smke-rt-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function capture(): { bus: EventBus; events: RunEvent[]; of: <T extends RunEvent['type']>(t: T) => Extract<RunEvent, { type: T }>[] } {
  const bus = new EventBus();
  const events: RunEvent[] = [];
  bus.on((e) => events.push(e));
  return { bus, events, of: (t) => events.filter((e) => e.type === t) as never };
}
