// The data stage kinds, registered in ../registry.ts.
import type { StageKind } from '../kind.js';
import { syntheticKind } from './synthetic.js';

export const kinds: StageKind[] = [syntheticKind];
