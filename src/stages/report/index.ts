// The report stage kinds, registered in ../registry.ts.
import type { AnyStageKind } from '../stage-kind.js';
import { reportPaper } from './paper.js';

export const kinds: AnyStageKind[] = [reportPaper];
