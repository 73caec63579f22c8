import type { AnyStageKind } from '../kind.js';
import { execKind } from './kind.js';

export const kinds: AnyStageKind[] = [execKind];
