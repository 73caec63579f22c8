// The data stage kinds, registered in ../registry.ts.
import type { StageKind } from '../kind.js';
import { downloadKind } from './download.js';
import { syntheticKind } from './synthetic.js';

export const kinds: StageKind[] = [downloadKind, syntheticKind];
