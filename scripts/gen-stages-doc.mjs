#!/usr/bin/env node
// Regenerates docs/stages.md from the registered kinds' schemas (run after
// `npm run build`). test/compiler/stages-doc.test.ts fails while it is stale.
import { writeFileSync } from 'node:fs';
import { registry } from '../dist/stages/registry.js';
import { stagesMarkdown } from '../dist/compiler/kind-docs.js';

const out = new URL('../docs/stages.md', import.meta.url);
writeFileSync(out, stagesMarkdown(registry().all()));
process.stderr.write(`wrote ${out.pathname}\n`);
