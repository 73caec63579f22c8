// Runs an exec stage's program. Owned by the runtime issue; see ./kind.ts.
import type { Value } from '../../compiler/plan.js';
import type { StageContext } from '../kind.js';

export async function runExec(_ctx: StageContext, _params: Record<string, Value>): Promise<void> {
  throw new Error('exec: not implemented yet');
}
