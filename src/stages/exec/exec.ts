// The `exec` kind: runs any program, the way a pipeline drives code smke does
// not ship (the reference PyTorch implementation, a shell script). Its
// descriptor is here; the process handling lives in ./exec-run.ts so that loading
// the registry stays cheap.

import type { Value } from '../../compiler/plan.js';
import { defineKind, type ObjectSchema, type OutputSpec, type ParamsOf } from '../stage-kind.js';
import { KIND_VERSIONS } from '../kind-versions.js';

/** Output names must be usable in references (`stage.name`). */
const OUTPUT_NAME = '^[A-Za-z_][A-Za-z0-9_]*$';

const execParams = {
  type: 'object',
  additionalProperties: false,
  required: ['argv'],
  properties: {
    argv: {
      description:
        'The command: an array of arguments (no shell), or with shell = true one string run by /bin/sh -c. ' +
        'The text {out} is replaced by the stage output directory; upstream references become absolute paths.',
      anyOf: [
        { type: 'array', items: { type: 'string' }, minItems: 1 },
        { type: 'string', minLength: 1 },
      ],
    },
    shell: { type: 'boolean', default: false, description: 'Run argv through /bin/sh -c (argv must be one string or one element).' },
    inputs: {
      type: 'array',
      items: { type: 'string' },
      default: [],
      description: 'Files, directories or globs (project-relative) whose content goes into the cache key.',
    },
    outputs: {
      description:
        'Paths the program must create inside {out}: a list, or a map from output name to path. ' +
        'A missing one fails the stage. Each becomes a referencable output (a list entry is named after its file name without extension).',
      anyOf: [
        { type: 'array', items: { type: 'string' } },
        { type: 'object', propertyNames: { pattern: OUTPUT_NAME }, additionalProperties: { type: 'string' } },
      ],
      default: [],
    },
    env: {
      type: 'object',
      additionalProperties: { type: 'string' },
      default: {},
      description:
        'Environment variables set for the program. Their values are part of the key, recorded and printed like any param: put credentials in secret_env instead.',
    },
    cwd: { type: 'string', default: '.', description: 'Working directory, relative to the project directory.' },
    // No defaults below: a default is a filled-in param, and params are in the key; adding one must not rerun every exec stage.
    secret_env: {
      type: 'array',
      items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
      uniqueItems: true,
      description:
        "Names of environment variables passed from smke's environment to the program, for credentials (HF_TOKEN, WANDB_API_KEY). " +
        'Their values are not part of the key and are never stored or printed (shown as <secret>); an unset one fails the stage. ' +
        'Other stages do not see them: a stage gets only PATH, HOME, locale, TMPDIR, proxies, CUDA_*, SLURM_*, SMKE_* and what it declares.',
    },
    sandbox: {
      type: 'boolean',
      description:
        'Linux, needs bubblewrap (bwrap): run the program where only the system directories (read-only), its declared inputs and upstream ' +
        'entries (read-only), {out} and its scratch directory exist; writes to other entries and reads of undeclared files fail. Default false.',
    },
    metrics: {
      type: 'string',
      minLength: 1,
      description:
        'A JSON file the program writes in {out} (e.g. "metrics.json"): its numbers become the stage\'s metrics ' +
        '(nested objects as a.b), shown by smke diff and smke history --metrics. A missing or malformed file fails the stage.',
    },
  },
} as const satisfies ObjectSchema;

export type ExecParams = ParamsOf<typeof execParams>;

export const execKind = defineKind({
  name: 'exec',
  version: KIND_VERSIONS['exec'],
  // The program is a process of its own: the worker only waits for it.
  pooled: true,
  summary: 'Run a program (argv array, or a shell command with shell = true) and publish what it writes to {out}',
  params: execParams,
  outputs(params) {
    const outputs: Record<string, OutputSpec> = {
      out: { type: 'dir', path: '.', description: 'The whole output directory' },
    };
    for (const [name, path] of Object.entries(execOutputPaths(params.outputs))) {
      outputs[name] = { type: 'file', path, description: `Declared output ${path}` };
    }
    if (typeof params.metrics === 'string' && !Object.values(outputs).some((o) => o.path === params.metrics)) {
      outputs.metrics ??= { type: 'metrics', path: params.metrics, description: `The metrics file ${params.metrics}` };
    }
    return outputs;
  },
  inputs(params) {
    // A reference to an upstream output is in the key already, through the upstream's key.
    return params.inputs.filter((p): p is string => typeof p === 'string');
  },
  passEnv(params) {
    return (params.secret_env ?? []).filter((n): n is string => typeof n === 'string');
  },
  async run(ctx, params) {
    const { runExec } = await import('./exec-run.js');
    await runExec(ctx, params);
  },
});

/** Output name -> path inside the output directory, for both forms of `outputs`. */
export function execOutputPaths(outputs: Value | undefined): Record<string, string> {
  const named: Record<string, string> = {};
  if (Array.isArray(outputs)) {
    for (const p of outputs) {
      if (typeof p !== 'string') continue;
      const base = p.split('/').pop() ?? p;
      const name = base
        .replace(/\.[^.]*$/, '')
        .replace(/[^A-Za-z0-9_]/g, '_')
        .replace(/^(?=[0-9])/, '_');
      // `""` or `"."` names no file, but must still be checked (and refused) as an output.
      named[name || '_'] = p;
    }
  } else if (outputs && typeof outputs === 'object') {
    for (const [name, p] of Object.entries(outputs)) if (typeof p === 'string') named[name] = p;
  }
  return named;
}
