// The published image encoders as smke ViTs: BEiTv2 (unilm beit2, as
// beitv2_base_patch16_224_pt1k.pth) and Data2Vec2 (fairseq data2vec_multi,
// as base_imagenet.pt), from their PyTorch state dicts to smke's names and
// [in, out] layout. Every tensor of the encoder is mapped or the import
// fails naming it; heads the encoder does not use (BEiT's lm_head and CLS
// pretraining layers, Data2Vec2's decoder and EMA copy) are listed as skipped.
//
// BEiT: pre-LN blocks with LayerScale (gamma_1/2), qkv without a k bias
// (q_bias, v_bias), relative position bias shared or per block, absolute
// positions optional, final norm. Data2Vec2: CLS (extra_tokens) without a
// position, fixed sin-cos positions for the patches, a LayerNorm on the
// embedded sequence, post-LN blocks (layer_norm_first = False), no final norm.

import { defineVit, relativePositionIndex, type VitConfig } from './vit.js';
import type { ParamStore } from './params.js';
import { OpaqueObject } from './pickle.js';
import { transpose } from './import-hf.js';
import { findStateDict, loadTorchCheckpoint, type TorchTensor } from './torch-checkpoint.js';

export type VitLayout = 'beitv2' | 'data2vec2';

export interface ImportedVit {
  vit: VitConfig;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** Checkpoint tensors that belong to parts smke does not use. */
  skipped: string[];
}

export interface ImportOptions {
  /** Attention heads; read from the relative position table or the checkpoint's config when absent, else width / 64. */
  heads?: number;
  /** LayerNorm epsilon; from the checkpoint's config when absent, else 1e-6 (both published models). */
  eps?: number;
}

const D2V = 'modality_encoders.IMAGE.';

/** Which published layout a state dict is in, from its keys. */
export function detectLayout(keys: Iterable<string>): VitLayout {
  const ks = [...keys];
  if (ks.some((k) => k.startsWith(D2V))) return 'data2vec2';
  if (ks.includes('patch_embed.proj.weight')) return 'beitv2';
  throw new Error(
    `not a BEiTv2 or Data2Vec2 image encoder: neither patch_embed.proj.weight nor ${D2V}* is in the state dict (keys: ${ks.slice(0, 6).join(', ')}${ks.length > 6 ? ', ...' : ''})`,
  );
}

/**
 * A value named `key` anywhere in a checkpoint's config objects (fairseq's
 * cfg dict or omegaconf DictConfig, an argparse Namespace): stubs are data,
 * so this only reads them. omegaconf wraps leaves in nodes holding `_val`.
 */
export function findConfigValue(root: unknown, key: string, depth = 0): unknown {
  if (depth > 12 || !root || typeof root !== 'object') return undefined;
  const unwrap = (v: unknown): unknown => {
    if (v instanceof OpaqueObject && v.state instanceof Map && v.state.has('_val')) return v.state.get('_val');
    return v;
  };
  if (root instanceof Map) {
    if (root.has(key)) {
      const v = unwrap(root.get(key));
      if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
    }
    for (const [k, v] of root) {
      if (k === 'model' && depth === 0 && v instanceof Map && [...v.values()].some((x) => x && typeof x === 'object' && 'dtype' in x)) continue; // the weights
      const found = findConfigValue(v, key, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (root instanceof OpaqueObject)
    return (
      findConfigValue(root.state, key, depth + 1) ??
      (root.items.length ? findConfigValue(new Map(root.items as [unknown, unknown][]), key, depth + 1) : undefined)
    );
  if (Array.isArray(root)) {
    for (const v of root) {
      const found = findConfigValue(v, key, depth + 1);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Conv2d weight [D, C, p, p] -> smke's patch matrix [p*p*C, D] (patchify's (row, col, channel) order). */
function patchMatrix(w: { shape: number[]; data: Float32Array }): Float32Array {
  const [d, ch, p] = w.shape as [number, number, number];
  const out = new Float32Array(p * p * ch * d);
  for (let o = 0; o < d; o++)
    for (let c = 0; c < ch; c++)
      for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) out[((i * p + j) * ch + c) * d + o] = w.data[((o * ch + c) * p + i) * p + j]!;
  return out;
}

export function importVit(state: Map<string, TorchTensor>, layout: VitLayout, opts: ImportOptions & { config?: unknown } = {}): ImportedVit {
  const used = new Set<string>();
  const has = (k: string) => state.has(k);
  const get = (k: string, shape?: number[]): { shape: number[]; data: Float32Array } => {
    const t = state.get(k);
    if (!t) throw new Error(`${layout} checkpoint lacks ${k}`);
    if (!(t.data instanceof Float32Array)) throw new Error(`${layout} checkpoint: ${k} is ${t.dtype}, a floating-point tensor is needed`);
    if (shape && t.shape.join('x') !== shape.join('x'))
      throw new Error(`${layout} checkpoint: ${k} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    used.add(k);
    return { shape: t.shape, data: t.data };
  };
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const set = (name: string, shape: number[], data: Float32Array) => out.set(`image.${name}`, { shape, data });

  const src = layout === 'beitv2' ? { patch: 'patch_embed.proj', cls: 'cls_token' } : { patch: `${D2V}local_encoder.proj`, cls: `${D2V}extra_tokens` };
  const pw = get(`${src.patch}.weight`);
  if (pw.shape.length !== 4 || pw.shape[2] !== pw.shape[3])
    throw new Error(`${layout} checkpoint: ${src.patch}.weight has shape [${pw.shape.join(', ')}], a square Conv2d [D, C, p, p] is expected`);
  const [dim, channels, patch] = pw.shape as [number, number, number];
  set('patch.w', [patch * patch * channels, dim], patchMatrix(pw));
  set('patch.b', [dim], get(`${src.patch}.bias`, [dim]).data);
  const cls = get(src.cls);
  if (cls.shape.join('x') !== `1x1x${dim}`)
    throw new Error(`${layout} checkpoint: ${src.cls} has shape [${cls.shape.join(', ')}]: smke's ViT takes exactly one extra (CLS) token`);
  set('cls', [1, 1, dim], cls.data);

  let depth = 0;
  while ([...state.keys()].some((k) => k.startsWith(`blocks.${depth}.`))) depth++;
  if (!depth) throw new Error(`${layout} checkpoint has no blocks.0.*`);
  const fc1 = get('blocks.0.mlp.fc1.weight');
  if (fc1.shape[0]! % dim) throw new Error(`${layout} checkpoint: MLP width ${fc1.shape[0]} is not a multiple of ${dim}`);

  // Relative position bias: BEiT's shared table, or one per block.
  const sharedRel = layout === 'beitv2' && has('rel_pos_bias.relative_position_bias_table');
  const blockRel = layout === 'beitv2' && has('blocks.0.attn.relative_position_bias_table');
  const relTable = sharedRel
    ? state.get('rel_pos_bias.relative_position_bias_table')
    : blockRel
      ? state.get('blocks.0.attn.relative_position_bias_table')
      : undefined;

  // Grid side: from the position table or the relative table, else 224 px.
  let side: number | undefined;
  const posKey = layout === 'beitv2' ? 'pos_embed' : `${D2V}fixed_positional_encoder.positions`;
  if (has(posKey)) side = Math.sqrt(state.get(posKey)!.shape[1]! - (layout === 'beitv2' ? 1 : 0));
  else if (relTable) side = (Math.sqrt(relTable.shape[0]! - 3) + 1) / 2;
  else side = 224 / patch;
  if (!Number.isInteger(side)) throw new Error(`${layout} checkpoint: the position table is not a square grid of patches`);
  const n = side * side;

  const cfgNum = (key: string) => {
    const v = findConfigValue(opts.config, key);
    return typeof v === 'number' ? v : undefined;
  };
  const heads = opts.heads ?? relTable?.shape[1] ?? cfgNum('num_heads') ?? dim / 64;
  if (!Number.isInteger(heads) || heads < 1 || dim % heads)
    throw new Error(`${layout} checkpoint: width ${dim} is not divisible into ${heads} heads: pass heads explicitly`);
  if (relTable && relTable.shape[1] !== heads)
    throw new Error(`${layout} checkpoint: the relative position table has ${relTable.shape[1]} heads, ${heads} were asked for`);
  const eps = opts.eps ?? cfgNum('norm_eps') ?? 1e-6;

  // Data2Vec2's layer_norm_first decides pre- or post-LN; the norms present tell which.
  const preNorm = layout === 'beitv2' ? true : !has(`${D2V}context_encoder.norm.weight`);
  const finalNorm = has('norm.weight');
  const layerScale = has('blocks.0.gamma_1') ? 0.1 : 0;
  const vit: VitConfig = {
    imageSize: side * patch,
    patchSize: patch,
    channels,
    dim,
    depth,
    heads,
    mlpRatio: fc1.shape[0]! / dim,
    eps,
    layerScale,
    ...(preNorm ? {} : { preNorm: false }),
    ...(layout === 'data2vec2' && !preNorm ? { embedNorm: true } : {}),
    ...(finalNorm ? {} : { finalNorm: false }),
    ...(sharedRel ? { relPos: 'shared' as const } : blockRel ? { relPos: 'block' as const } : {}),
  };

  // Absolute positions: [CLS, patches] rows. Absent ones are zero (BEiT without abs_pos_emb;
  // Data2Vec2's CLS, which gets no position), so adding them changes nothing.
  const pos = new Float32Array((n + 1) * dim);
  if (layout === 'beitv2') {
    if (has(posKey)) pos.set(get(posKey, [1, n + 1, dim]).data);
  } else {
    pos.set(has(posKey) ? get(posKey, [1, n, dim]).data : sincosPositions(dim, side), dim);
  }
  set('pos', [1, n + 1, dim], pos);
  if (vit.embedNorm) {
    set('embln.g', [dim], get(`${D2V}context_encoder.norm.weight`, [dim]).data);
    set('embln.b', [dim], get(`${D2V}context_encoder.norm.bias`, [dim]).data);
  }

  const expectIndex = relativePositionIndex(side, side);
  const rows = (2 * side - 1) ** 2 + 3;
  const checkIndex = (k: string) => {
    if (!has(k)) return;
    used.add(k);
    const t = state.get(k)!;
    if (t.data.length !== expectIndex.length || t.data.some((v, i) => v !== expectIndex[i]))
      throw new Error(`${layout} checkpoint: ${k} differs from BEiT's relative position index for a ${side}x${side} grid`);
  };
  if (sharedRel) {
    set('rel_pos', [rows, heads], get('rel_pos_bias.relative_position_bias_table', [rows, heads]).data);
    checkIndex('rel_pos_bias.relative_position_index');
  }

  for (let i = 0; i < depth; i++) {
    const b = `blocks.${i}`,
      me = `blocks.${i}`;
    const lin = (to: string, from: string, dIn: number, dOut: number) => {
      set(`${me}.${to}.w`, [dIn, dOut], transpose(get(`${b}.${from}.weight`, [dOut, dIn])));
      set(`${me}.${to}.b`, [dOut], get(`${b}.${from}.bias`, [dOut]).data);
    };
    const norm = (to: string, from: string) => {
      set(`${me}.${to}.g`, [dim], get(`${b}.${from}.weight`, [dim]).data);
      set(`${me}.${to}.b`, [dim], get(`${b}.${from}.bias`, [dim]).data);
    };
    norm('ln1', 'norm1');
    norm('ln2', 'norm2');
    // qkv: fused [3D, D] with one bias, or BEiT's q_bias/v_bias (no k bias: zero, which
    // changes no attention weight), or fairseq-style split projections.
    const qkvB = new Float32Array(3 * dim);
    if (has(`${b}.attn.qkv.weight`)) {
      set(`${me}.attn.qkv.w`, [dim, 3 * dim], transpose(get(`${b}.attn.qkv.weight`, [3 * dim, dim])));
      if (has(`${b}.attn.qkv.bias`)) qkvB.set(get(`${b}.attn.qkv.bias`, [3 * dim]).data);
      else {
        if (has(`${b}.attn.q_bias`)) qkvB.set(get(`${b}.attn.q_bias`, [dim]).data, 0);
        if (has(`${b}.attn.k_bias`)) qkvB.set(get(`${b}.attn.k_bias`, [dim]).data, dim);
        if (has(`${b}.attn.v_bias`)) qkvB.set(get(`${b}.attn.v_bias`, [dim]).data, 2 * dim);
      }
    } else if (has(`${b}.attn.q_proj.weight`)) {
      const w = new Float32Array(dim * 3 * dim);
      ['q_proj', 'k_proj', 'v_proj'].forEach((p, j) => {
        const m = transpose(get(`${b}.attn.${p}.weight`, [dim, dim]));
        for (let r = 0; r < dim; r++) w.set(m.subarray(r * dim, (r + 1) * dim), r * 3 * dim + j * dim);
        if (has(`${b}.attn.${p}.bias`)) qkvB.set(get(`${b}.attn.${p}.bias`, [dim]).data, j * dim);
      });
      set(`${me}.attn.qkv.w`, [dim, 3 * dim], w);
    } else throw new Error(`${layout} checkpoint: ${b}.attn has neither qkv.weight nor q_proj/k_proj/v_proj`);
    set(`${me}.attn.qkv.b`, [3 * dim], qkvB);
    lin('attn.proj', 'attn.proj', dim, dim);
    lin('mlp.fc1', 'mlp.fc1', dim, vit.mlpRatio * dim);
    lin('mlp.fc2', 'mlp.fc2', vit.mlpRatio * dim, dim);
    if (layerScale) {
      set(`${me}.ls1`, [dim], get(`${b}.gamma_1`, [dim]).data);
      set(`${me}.ls2`, [dim], get(`${b}.gamma_2`, [dim]).data);
    }
    if (blockRel) {
      set(`${me}.attn.rel_pos`, [rows, heads], get(`${b}.attn.relative_position_bias_table`, [rows, heads]).data);
      checkIndex(`${b}.attn.relative_position_index`);
    }
    const left = [...state.keys()].filter((k) => k.startsWith(`${b}.`) && !used.has(k));
    if (left.length)
      throw new Error(`${layout} checkpoint: ${left.join(', ')} cannot be mapped to smke's ViT block (an architecture variant this importer does not know)`);
  }
  if (finalNorm) {
    set('norm.g', [dim], get('norm.weight', [dim]).data);
    set('norm.b', [dim], get('norm.bias', [dim]).data);
  }
  for (const k of [`${D2V}alibi_scale`, `${D2V}context_encoder.blocks.0.attn.qkv.weight`])
    if (has(k)) throw new Error(`${layout} checkpoint has ${k}: ALiBi and pre-net blocks are not supported by smke's ViT`);
  return { vit, tensors: out, skipped: [...state.keys()].filter((k) => !used.has(k)) };
}

/**
 * MAE's fixed 2-D sin-cos positions (Data2Vec2 uses them), [side*side, dim]:
 * the first half of each row encodes the column (w), the second the row (h),
 * each as [sin | cos] of pos / 10000^(2i/(dim/2)).
 */
export function sincosPositions(dim: number, side: number): Float32Array {
  if (dim % 4) throw new Error(`sin-cos positions need a width divisible by 4, not ${dim}`);
  const quarter = dim / 4;
  const out = new Float32Array(side * side * dim);
  for (let h = 0; h < side; h++)
    for (let w = 0; w < side; w++) {
      const row = (h * side + w) * dim;
      [w, h].forEach((p, half) => {
        for (let i = 0; i < quarter; i++) {
          const a = p / 10000 ** (i / quarter);
          out[row + half * 2 * quarter + i] = Math.sin(a);
          out[row + half * 2 * quarter + quarter + i] = Math.cos(a);
        }
      });
    }
  return out;
}

/** The parameter names and shapes smke's ViT has for a config, without tfjs (defineVit only calls `add`). */
export function vitShapes(c: VitConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const recorder = { add: (name: string, shape: number[]) => void shapes.set(name, shape) };
  defineVit(recorder as unknown as ParamStore, 'image', c);
  return shapes;
}

/** Checks that imported tensors are exactly the parameters of their config: no more, no fewer, same shapes. */
export function checkVitTensors(c: VitConfig, tensors: Map<string, { shape: number[] }>): void {
  const want = vitShapes(c);
  const missing = [...want.keys()].filter((k) => !tensors.has(k));
  const extra = [...tensors.keys()].filter((k) => !want.has(k));
  const wrong = [...want].filter(([k, s]) => tensors.has(k) && tensors.get(k)!.shape.join('x') !== s.join('x')).map(([k]) => k);
  if (missing.length || extra.length || wrong.length)
    throw new Error(
      `imported weights do not match smke's ViT: missing ${missing.join(', ') || 'none'}; unexpected ${extra.join(', ') || 'none'}; wrong shape ${wrong.join(', ') || 'none'}`,
    );
}

export interface PublishedVit extends ImportedVit {
  layout: VitLayout;
  /** Where in the checkpoint the weights were ('model' or '' for the root). */
  under: string;
}

/** Reads a BEiTv2 / Data2Vec2 `.pth`/`.pt` file as a smke ViT (checked against defineVit's parameters). */
export async function readPublishedVit(path: string, opts: ImportOptions & { layout?: VitLayout | 'auto' } = {}): Promise<PublishedVit> {
  const root = await loadTorchCheckpoint(path);
  const { tensors: state, under } = findStateDict(root);
  const layout = !opts.layout || opts.layout === 'auto' ? detectLayout(state.keys()) : opts.layout;
  const imported = importVit(state, layout, { ...opts, config: root });
  checkVitTensors(imported.vit, imported.tensors);
  return { ...imported, layout, under };
}
