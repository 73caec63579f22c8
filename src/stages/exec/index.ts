import type { StageKind } from '../stage-kind.js';
import { execKind } from './exec.js';

export const kinds: StageKind[] = [execKind];
