// The report stage kinds, registered in ../registry.ts.
import type { StageKind } from '../stage-kind.js';
import { reportPaper } from './paper.js';

export const kinds: StageKind[] = [reportPaper];
