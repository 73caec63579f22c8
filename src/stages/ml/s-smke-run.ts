// train.s_smke: S-SMKE pretraining (docs/method.md). The image and text encoders
// come from pretrained unimodal checkpoints truncated to `layers` blocks; the
// frozen teacher gives the KD targets on the same augmented images.
// Resumable: every `checkpoint_every` steps the model, AdamW moments, memory
// bank and step go to ctx.scratchDir, which survives a killed attempt; data
// order and augmentation are functions of (seed, step), so a resumed run
// continues exactly where the killed one was.

import * as tf from '@tensorflow/tfjs';
import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageContext } from '../stage-kind.js';
import { Rng, deriveSeed } from '../../data/rng.js';
import { l2normalize } from '../../ml/layers.js';
import { MemoryBank } from '../../ml/losses.js';
import { loadModel, loadTokenizer, smkeFromUnimodal, VOCAB_FILE, type VitCheckpoint } from '../../ml/models.js';
import { AdamW, cosineWithWarmup, SMKE_ADAMW } from '../../ml/optim.js';
import type { ParamStore } from '../../ml/params.js';
import { loadSafetensors, saveSafetensors, type NamedTensor } from '../../ml/safetensors.js';
import { saveCheckpoint } from '../../ml/checkpoint.js';
import { smkeTrainStep, smkeValidate, type PendingStep, type SmkeBatch } from '../../ml/smke-train.js';
import { vitForward } from '../../ml/vit.js';
import { dirList, setupBackend, StepReporter, writeMetrics } from './common.js';
import { epochBatches } from './images.js';
import { loadPairs, pairBatch, textTensors } from './pairs.js';
import { MicroStream, trainAugment } from './streaming.js';
import { rankShare, type Communicator } from '../../ml/data-parallel.js';
import { rankDevices, startRanks, type Ranks } from './ranks.js';
import type { TrainSmkeParams } from './s-smke.js';

/** The teacher's target: its last-block CLS, final norm removed, L2-normalised. */
export function teacherTargets(teacher: ParamStore, cfg: VitCheckpoint['vit'], images: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => l2normalize(vitForward(teacher, 'image', cfg, images, { finalNorm: false }).slice([0, 0, 0], [-1, 1, -1]).squeeze([1])) as tf.Tensor2D);
}

/** latest.json: the step of the checkpoint in force and its directory. */
interface ResumePointer {
  step: number;
  dir: string;
}

async function saveResume(dir: string, step: number, ps: ParamStore, opt: AdamW, bank: MemoryBank): Promise<void> {
  const target = join(dir, `ckpt-${String(step).padStart(8, '0')}`);
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true });
  await saveSafetensors(join(target, 'model.safetensors'), (await ps.snapshot()) as Map<string, NamedTensor>);
  const state = (await opt.snapshot()) as Map<string, NamedTensor>;
  state.set('bank', { shape: [bank.size, bank.dim], data: await bank.data() });
  await saveSafetensors(join(target, 'state.safetensors'), state, { step: String(step) });
  // The pointer is written last and atomically: a kill before this leaves the previous checkpoint in force.
  const tmp = join(dir, `latest.json.tmp-${process.pid}`);
  await writeFile(tmp, JSON.stringify({ step, dir: target } satisfies ResumePointer));
  await rename(tmp, join(dir, 'latest.json'));
  for (const e of await readdir(dir)) if (e.startsWith('ckpt-') && join(dir, e) !== target) await rm(join(dir, e), { recursive: true, force: true });
}

async function loadResume(dir: string, ps: ParamStore, opt: AdamW, bank: MemoryBank): Promise<number> {
  let latest: ResumePointer;
  try {
    latest = JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8'));
  } catch {
    return 0;
  }
  const model = await loadSafetensors(join(latest.dir, 'model.safetensors'));
  ps.load(model.tensors as Map<string, { shape: number[]; data: Float32Array }>, { strict: true });
  const state = await loadSafetensors(join(latest.dir, 'state.safetensors'));
  opt.restore(state.tensors as Map<string, { shape: number[]; data: Float32Array }>, latest.step);
  bank.set(state.tensors.get('bank')!.data as Float32Array);
  return latest.step;
}

/**
 * With more than one granted GPU the stage runs data-parallel: this process is rank 0 and starts the
 * others (./ranks.ts); each rank computes accum_steps/N of every step's micro-batches. The micro-batches
 * and their order do not depend on N, so the result does not either (up to float summation order).
 * `comm` is given to the child ranks, which run their share through this same function.
 */
export async function runSmke(ctx: StageContext, p: TrainSmkeParams, comm?: Communicator): Promise<void> {
  const devices = rankDevices(ctx);
  const world = comm ? comm.world : Math.max(1, devices.length);
  if (world > 1 && p.accum_steps % world !== 0) {
    throw new Error(
      `train.s_smke on ${world} GPUs needs accum_steps to be a multiple of ${world} (each GPU computes accum_steps/${world} micro-batches of batch_size); it is ${p.accum_steps}. Set accum_steps = ${world} and batch_size = global batch / ${world}`,
    );
  }
  if (comm || world === 1) return trainSmke(ctx, p, comm);
  const before = process.env.CUDA_VISIBLE_DEVICES;
  // Rank 0 computes on the first granted device; the others get one each from startRanks.
  process.env.CUDA_VISIBLE_DEVICES = String(devices[0]);
  let ranks: Ranks | undefined;
  try {
    ranks = await startRanks(ctx, 'train.s_smke', p);
    ctx.log.info(`data-parallel: ${world} ranks on GPUs ${devices.join(', ')}`);
    await trainSmke(ctx, p, ranks.comm);
    await ranks.stop(true);
  } catch (err) {
    await ranks?.stop(false).catch(() => {});
    throw err;
  } finally {
    if (before === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
    else process.env.CUDA_VISIBLE_DEVICES = before;
  }
}

async function trainSmke(ctx: StageContext, p: TrainSmkeParams, comm: Communicator | undefined): Promise<void> {
  // Rank 0 (or the only rank) reports, validates and writes; the other ranks only train.
  const lead = !comm || comm.rank === 0;
  const { backend } = await setupBackend(ctx, p);
  if (comm && comm.world > 1 && backend === 'webgpu')
    ctx.log.warn(
      `rank ${comm.rank}: the webgpu backend (Dawn) does not select its GPU by CUDA_VISIBLE_DEVICES=${process.env.CUDA_VISIBLE_DEVICES ?? ''}; on a machine with identical GPUs every rank opens the first one it can reach unless each process sees only its own (Slurm ConstrainDevices, one container per GPU). Use the tensorflow-gpu backend, or isolate the devices (docs/paper-profile.md)`,
    );
  const teacher = await loadModel(p.teacher, ctx.seed);
  if (teacher.config.model !== 'vit') throw new Error(`teacher ${p.teacher} is a '${teacher.config.model}' checkpoint, a vit is needed`);
  const tcfg = teacher.config.vit;
  teacher.ps.setTrainable('', false);
  const { ps, cfg } = await smkeFromUnimodal(p.image_encoder, p.text_encoder, {
    layers: p.layers,
    sharedHeads: p.shared_heads,
    sharedMlpRatio: p.shared_mlp_ratio,
    teacherDim: tcfg.dim,
    seed: deriveSeed(ctx.seed, 'init', 'train.s_smke'),
    random: p.init === 'random',
  });
  if (tcfg.imageSize !== cfg.image.imageSize) throw new Error(`teacher takes ${tcfg.imageSize} px images, the image encoder ${cfg.image.imageSize} px`);
  ctx.log.info(`S-SMKE: ${ps.count()} parameters (${cfg.image.depth}+${cfg.text.depth} encoder layers, width ${cfg.image.dim}), teacher width ${tcfg.dim}`);
  const tok = await loadTokenizer(p.text_encoder);
  const dirs = dirList(p.pairs);
  const size = cfg.image.imageSize,
    maxLen = cfg.text.maxLen;
  // data = "stream": the training split is read from its shards as the steps need it, never held whole.
  const streaming = p.data === 'stream';
  const train = streaming ? undefined : await loadPairs(dirs, 'train', size, tok, maxLen, { signal: ctx.signal });
  const b = p.batch_size,
    accum = p.accum_steps,
    steps = p.steps;
  const valSet = lead ? await loadPairs(dirs.slice(0, 1), p.val_split, size, tok, maxLen, { limit: b * p.val_batches, signal: ctx.signal }) : undefined;
  if (train && train.images.records.length < b) throw new Error(`batch_size ${b} exceeds the ${train.images.records.length} training images`);

  const opt = new AdamW(ps, { ...SMKE_ADAMW, weightDecay: p.weight_decay });
  const bank = new MemoryBank(p.bank_size, tcfg.dim, deriveSeed(ctx.seed, 'bank'));
  const resumeDir = join(ctx.scratchDir, 'resume');
  await mkdir(resumeDir, { recursive: true });
  const start = await loadResume(resumeDir, ps, opt, bank);
  if (start > 0) ctx.log.info(`resuming from step ${start} (checkpoint in ${resumeDir})`);

  const share = (all: number[]) => (comm ? rankShare(all, comm.rank, comm.world) : all);
  const mineK = new Set(share(Array.from({ length: accum }, (_, k) => k)));
  const stream = streaming
    ? await MicroStream.open(dirs, {
        split: 'train',
        batchSize: b,
        seed: ctx.seed,
        augment: trainAugment(size),
        mine: (j) => mineK.has(j % accum),
        from: start * accum,
        signal: ctx.signal,
      })
    : undefined;
  if (stream) ctx.log.info(`streaming ${stream.source.total} training pairs from ${stream.source.shards.length} shards (${stream.perEpoch} batches per epoch)`);
  const batches = train ? epochBatches(train.images.records.length, b, ctx.seed) : undefined;
  const withTeacher = (images: tf.Tensor4D, text: SmkeBatch['text']): SmkeBatch => ({ images, text, teacher: teacherTargets(teacher.ps, tcfg, images) });
  const microBatch = async (step: number, k: number): Promise<SmkeBatch> => {
    if (!stream) {
      const { images, text } = pairBatch(train!, batches!(step * accum + k), new Rng(deriveSeed(ctx.seed, 'aug', step, k)));
      return withTeacher(images, text);
    }
    const sb = await stream.get(step * accum + k);
    const images = tf.tensor4d(sb.images!, [sb.size, size, size, 3]);
    return withTeacher(images, textTensors(sb.captions!.map((c) => tok.encode(c, undefined, maxLen))));
  };
  const valBatches: SmkeBatch[] = [];
  for (let i = 0; valSet && i + 1 < valSet.images.records.length; i += b) {
    const idx = Array.from({ length: Math.min(b, valSet.images.records.length - i) }, (_, k) => i + k);
    const { images, text } = pairBatch(valSet, idx);
    valBatches.push({ images, text, teacher: teacherTargets(teacher.ps, tcfg, images) });
  }
  const free = (bs: SmkeBatch[]) => bs.forEach((x) => tf.dispose([x.images, x.text.ids, x.text.mask, x.text.segments ?? [], x.teacher]));

  const warmup = Math.round(p.warmup * steps);
  const reporter = new StepReporter(ctx, steps, b * accum);
  let last = { loss: NaN, kd: NaN, itc: NaN };
  let val = { loss: NaN, kd: NaN, itc: NaN, kdAcc: NaN, itcAcc: NaN };
  let stepSeconds = 0,
    stepsRun = 0;
  const validate = async (step: number) => {
    val = await smkeValidate(ps, cfg, valBatches);
    for (const [k, v] of Object.entries(val)) ctx.metric(`val_${k}`, v, step);
    ctx.log.info(`step ${step}: val loss ${val.loss.toFixed(4)}, KD acc ${(val.kdAcc * 100).toFixed(1)}%, ITC acc ${(val.itcAcc * 100).toFixed(1)}%`);
  };
  // Step k's metrics are read once step k+1 is queued, so the device never waits for the host
  // between steps; they are read at once before a validation, a checkpoint or the end.
  let queued: { step: number; lr: number; result: PendingStep; seconds: number } | undefined;
  const readQueued = async () => {
    if (!queued) return;
    const { step, lr, result, seconds } = queued;
    queued = undefined;
    const r = await result.read();
    if (!Number.isFinite(r.loss)) throw new Error(`loss is ${r.loss} at step ${step + 1}: lower the learning rate`);
    last = r;
    if (!lead) return;
    reporter.report(
      step + 1,
      {
        loss: r.loss,
        loss_kd: r.kd,
        loss_itc: r.itc,
        lr,
        grad_norm: r.gradNorm,
        logit_scale_interm: r.scaleInterm,
        logit_scale_out: r.scaleOut,
      },
      seconds,
    );
  };
  try {
    for (let step = start; step < steps; step++) {
      ctx.signal.throwIfAborted();
      const t0 = performance.now();
      const micro: SmkeBatch[] = [];
      for (const k of mineK) micro.push(await microBatch(step, k));
      const lr = cosineWithWarmup(step, p.lr, warmup, steps);
      const result = await smkeTrainStep(ps, cfg, opt, bank, micro, lr, p.clip, comm);
      free(micro);
      await readQueued();
      // From the step's start to here: its own work, and the wait for the step before it to finish.
      queued = { step, lr, result, seconds: (performance.now() - t0) / 1000 };
      const done = step + 1;
      const validating = done % p.val_every === 0 || done === steps;
      const checkpointing = done % p.checkpoint_every === 0 && done < steps;
      if (validating || checkpointing) await readQueued();
      stepSeconds += (performance.now() - t0) / 1000;
      stepsRun++;
      if (!lead) continue;
      if (validating) await validate(done);
      if (checkpointing) await saveResume(resumeDir, done, ps, opt, bank);
    }
    await readQueued();
    // A stop asked for while the last steps were read still stops the stage before it publishes.
    ctx.signal.throwIfAborted();
    if (!lead) return;
    const out = join(ctx.outDir, 'model');
    await saveCheckpoint(out, ps, { model: 's_smke', smke: cfg, trained_by: 'train.s_smke', steps });
    await copyFile(join(p.text_encoder, VOCAB_FILE), join(out, VOCAB_FILE));
    await writeMetrics(ctx, {
      loss: last.loss,
      loss_kd: last.kd,
      loss_itc: last.itc,
      val_loss: val.loss,
      val_kd: val.kd,
      val_itc: val.itc,
      val_kd_accuracy: val.kdAcc * 100,
      val_itc_accuracy: val.itcAcc * 100,
      steps,
      resumed_from: start,
      params: ps.count(),
      examples_per_second: stepsRun ? (stepsRun * b * accum) / stepSeconds : 0,
      backend,
    });
  } finally {
    queued?.result.dispose();
    await stream?.close();
    free(valBatches);
    bank.dispose();
    opt.dispose();
    ps.dispose();
    teacher.ps.dispose();
  }
}
