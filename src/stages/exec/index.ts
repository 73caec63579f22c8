import type { StageKind } from '../kind.js';
import { execKind } from './kind.js';

export const kinds: StageKind[] = [execKind];
