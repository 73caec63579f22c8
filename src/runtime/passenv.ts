// Which of smke's environment variables a stage instance is given, beyond
// the allow-list every stage gets (./secrets.ts): the variables in its key
// (the kind's `env`) and those its kind reads without keying them
// (`passEnv`: credentials such as HF_TOKEN, an exec stage's `secret_env`).

import type { StageInstance } from '../compiler/plan.js';
import { registry } from '../stages/registry.js';

/** Names the stage reads at run time whose values are never stored or printed. */
export function secretEnvNames(inst: StageInstance): string[] {
  return registry().get(inst.kind)?.passEnv?.(inst.params) ?? [];
}

/** Every name passed to this instance's process from smke's environment beyond the allow-list. */
export function passedEnvNames(inst: StageInstance): string[] {
  return [...new Set([...inst.env, ...secretEnvNames(inst)])];
}
