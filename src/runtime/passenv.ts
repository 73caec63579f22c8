// Which of smke's environment variables a stage instance is given, beyond
// the allow-list every stage gets (./secrets.ts): the variables in its key
// (the kind's `env`) and those its kind reads without keying them
// (`passEnv`: credentials such as HF_TOKEN, an exec stage's `secret_env`);
// and, from that, whether it may run in the local worker pool, whose workers
// have the allow-list only. Each function takes the instance's kind (from the
// registry, or ../stages/kind-loader.ts where loading every kind would cost):
// nothing here loads one.

import type { StageInstance } from '../compiler/plan.js';
import type { AnyStageKind } from '../stages/stage-kind.js';

/** Names the stage reads at run time whose values are never stored or printed. */
export function secretEnvNames(inst: StageInstance, kind: AnyStageKind | undefined): string[] {
  return kind?.passEnv?.(inst.params) ?? [];
}

/** Every name passed to this instance's process from smke's environment beyond the allow-list. */
export function passedEnvNames(inst: StageInstance, kind: AnyStageKind | undefined): string[] {
  return [...new Set([...inst.env, ...secretEnvNames(inst, kind)])];
}

/**
 * Whether `inst` runs in the local executor's worker pool: kinds that may
 * share a process, given no GPU and nothing from smke's environment beyond
 * the allow-list (a pooled worker has only that, ./secrets.ts).
 */
export function runsPooled(inst: StageInstance, onSlurm: boolean, kind: AnyStageKind | undefined): boolean {
  return !onSlurm && inst.resources.gpus === 0 && kind?.pooled === true && passedEnvNames(inst, kind).length === 0;
}

/** What a local job gets on top of the allow-list: only its granted GPUs are visible (none, to a stage that asked for none). */
export function jobEnv(gpuIds: number[], gpus: number, onSlurm: boolean): Record<string, string> {
  return !onSlurm && (gpuIds.length || gpus === 0) ? { CUDA_VISIBLE_DEVICES: gpuIds.join(',') } : {};
}
