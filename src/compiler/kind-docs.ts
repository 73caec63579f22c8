// The reference of a stage kind, generated from its descriptor: `smke kinds`
// prints it and docs/stages.md is made of it, so both always match the code.

import type { JsonSchema, KindInfo, OutputSpec } from './kind-catalog.js';
import { describeSchema } from './validate.js';

export interface ParamRow {
  name: string;
  type: string;
  required: boolean;
  default?: string;
  description: string;
}

export function paramRows(kind: KindInfo): ParamRow[] {
  const props = (kind.params.properties as Record<string, JsonSchema> | undefined) ?? {};
  const required = new Set((kind.params.required as string[] | undefined) ?? []);
  return Object.entries(props).map(([name, s]) => ({
    name,
    type: describeSchema(s),
    required: required.has(name),
    default: 'default' in s ? JSON.stringify(s.default) : undefined,
    description: typeof s.description === 'string' ? s.description : '',
  }));
}

/**
 * The outputs for the schema's default parameters, overlaid with `params` (outputs may depend on params);
 * undefined when the kind cannot say for these params.
 */
export function outputsFor(kind: KindInfo, params: Record<string, unknown> = {}): Record<string, OutputSpec> | undefined {
  const props = (kind.params.properties as Record<string, JsonSchema> | undefined) ?? {};
  const filled: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(props)) if ('default' in s) filled[name] = s.default;
  try {
    return kind.outputs({ ...filled, ...params } as never);
  } catch {
    return undefined;
  }
}

export function kindText(kind: KindInfo): string {
  const lines = [`${kind.name} (version ${kind.version})`, `  ${kind.summary}`, '', 'Parameters:'];
  const rows = paramRows(kind);
  if (rows.length === 0) lines.push('  (none)');
  for (const r of rows) {
    const tags = [r.type, r.required ? 'required' : r.default !== undefined ? `default ${r.default}` : 'optional'];
    lines.push(`  ${r.name}  (${tags.join(', ')})`);
    if (r.description) lines.push(`      ${r.description}`);
  }
  lines.push('', 'Outputs (with default parameters):');
  const outs = outputsFor(kind);
  if (!outs) lines.push('  (depend on the parameters)');
  else for (const [name, o] of Object.entries(outs)) lines.push(`  ${name}  (${o.type}, ${o.path})  ${o.description}`);
  return lines.join('\n') + '\n';
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function kindMarkdown(kind: KindInfo): string {
  const lines = [
    `## \`${kind.name}\``,
    '',
    `${kind.summary}. Version ${kind.version}.`,
    '',
    '| parameter | type | default | description |',
    '|---|---|---|---|',
  ];
  for (const r of paramRows(kind)) {
    lines.push(
      `| \`${r.name}\` | ${cell(r.type)} | ${r.required ? '**required**' : r.default !== undefined ? `\`${cell(r.default)}\`` : ''} | ${cell(r.description)} |`,
    );
  }
  const outs = outputsFor(kind);
  lines.push('', 'Outputs with the default parameters:', '');
  if (!outs) lines.push('(they depend on the parameters)');
  else {
    lines.push('| output | type | path | description |', '|---|---|---|---|');
    for (const [name, o] of Object.entries(outs)) lines.push(`| \`${name}\` | ${o.type} | \`${cell(o.path)}\` | ${cell(o.description)} |`);
  }
  return lines.join('\n') + '\n';
}

/** The whole of docs/stages.md for these kinds. */
export function stagesMarkdown(kinds: KindInfo[]): string {
  return [
    '# Stage kinds',
    '',
    "<!-- Generated from the kinds' schemas by `node scripts/gen-stages-doc.mjs` (after `npm run build`); do not edit by hand. -->",
    '',
    'Every kind smke ships, with its parameters (checked by the compiler against the JSON Schema below, defaults filled in) and',
    'the outputs other stages can reference as `stage.output`. `smke kinds KIND` prints the same.',
    '',
    ...kinds.map((k) => kindMarkdown(k)),
  ].join('\n');
}
