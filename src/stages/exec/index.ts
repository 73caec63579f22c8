import type { AnyStageKind } from '../stage-kind.js';
import { execKind } from './exec.js';

export const kinds: AnyStageKind[] = [execKind];
