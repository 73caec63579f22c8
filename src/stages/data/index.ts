// The data stage kinds, registered in ../registry.ts.
import type { AnyStageKind } from '../stage-kind.js';
import { cc12mKind, cc3mKind } from './cc.js';
import { cifarKind } from './cifar.js';
import { downloadKind } from './download.js';
import { glueKind } from './glue.js';
import { imagenetKind } from './imagenet.js';
import { cocoKind, flickr30kKind } from './karpathy.js';
import { syntheticKind } from './synthetic.js';
import { weightsFileKind } from './weights.js';

export const kinds: AnyStageKind[] = [
  downloadKind,
  syntheticKind,
  cc3mKind,
  cc12mKind,
  cocoKind,
  flickr30kKind,
  imagenetKind,
  glueKind,
  cifarKind,
  weightsFileKind,
];
