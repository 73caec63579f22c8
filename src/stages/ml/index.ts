// The ml stage kinds, registered in ../registry.ts.
import type { StageKind } from '../stage-kind.js';
import { trainImageEncoder, trainMlm, trainTeacher } from './unimodal.js';
import { trainSmke } from './s-smke.js';
import { finetuneImage, finetuneRetrieval, finetuneText } from './finetune.js';

export const kinds: StageKind[] = [trainTeacher, trainImageEncoder, trainMlm, trainSmke, finetuneText, finetuneImage, finetuneRetrieval];
