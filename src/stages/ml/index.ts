// The ml stage kinds, registered in ../registry.ts.
import type { AnyStageKind } from '../kind.js';
import { trainImageEncoder, trainMlm, trainTeacher } from './unimodal.js';
import { trainSmke } from './s_smke.js';
import { finetuneImage, finetuneRetrieval, finetuneText } from './finetune.js';

export const kinds: AnyStageKind[] = [trainTeacher, trainImageEncoder, trainMlm, trainSmke, finetuneText, finetuneImage, finetuneRetrieval];
