// The data stage kinds, registered in ../registry.ts.
import type { StageKind } from '../kind.js';

export const kinds: StageKind[] = [];
