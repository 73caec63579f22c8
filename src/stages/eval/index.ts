// The eval stage kinds, registered in ../registry.ts.
import type { StageKind } from '../stage-kind.js';
import { evalRetrieval, evalZeroshot } from './eval.js';

export const kinds: StageKind[] = [evalZeroshot, evalRetrieval];
