// The ml stage kinds, registered in ../registry.ts.
import type { AnyStageKind } from '../stage-kind.js';
import { trainImageEncoder, trainMlm, trainTeacher } from './unimodal.js';
import { trainSmke } from './s-smke.js';
import { finetuneImage, finetuneRetrieval, finetuneText } from './finetune.js';

export const kinds: AnyStageKind[] = [trainTeacher, trainImageEncoder, trainMlm, trainSmke, finetuneText, finetuneImage, finetuneRetrieval];
