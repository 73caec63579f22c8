// The data stage kinds, registered in ../registry.ts.
import type { StageKind } from '../kind.js';
import { cc12mKind, cc3mKind } from './cc.js';
import { downloadKind } from './download.js';
import { syntheticKind } from './synthetic.js';

export const kinds: StageKind[] = [downloadKind, syntheticKind, cc3mKind, cc12mKind];
