// The eval stage kinds, registered in ../registry.ts.
import type { AnyStageKind } from '../stage-kind.js';
import { evalRetrieval, evalZeroshot } from './eval.js';

export const kinds: AnyStageKind[] = [evalZeroshot, evalRetrieval];
