// Andrej Karpathy's caption splits (dataset_coco.json, dataset_flickr30k.json
// from caption_datasets.zip): the standard train/val/test split for
// retrieval (COCO 5k test images, Flickr30K 1k).

export interface KarpathyImage {
  /** Directory inside the image archive (COCO: train2014 / val2014); empty for Flickr30K. */
  filepath: string;
  filename: string;
  /** train, val or test (`restval` is folded into train, as everyone does). */
  split: 'train' | 'val' | 'test';
  captions: string[];
  /** cocoid or imgid: a stable number for the record id. */
  id: number;
}

interface RawImage {
  filepath?: string;
  filename?: string;
  split?: string;
  sentences?: { raw?: string }[];
  cocoid?: number;
  imgid?: number;
}

export function parseKarpathy(text: string, source: string): { images: KarpathyImage[]; malformed: number } {
  let doc: { images?: RawImage[] };
  try {
    doc = JSON.parse(text) as { images?: RawImage[] };
  } catch (err) {
    throw new Error(`${source}: not valid JSON (${(err as Error).message}); the Karpathy split file is corrupt`);
  }
  if (!Array.isArray(doc.images)) throw new Error(`${source}: no "images" array; is this a Karpathy split file (dataset_coco.json / dataset_flickr30k.json)?`);
  const images: KarpathyImage[] = [];
  let malformed = 0;
  for (const im of doc.images) {
    const split = im.split === 'restval' ? 'train' : im.split;
    const captions = (im.sentences ?? []).map((s) => (s.raw ?? '').trim()).filter(Boolean);
    const id = im.cocoid ?? im.imgid;
    if (!im.filename || (split !== 'train' && split !== 'val' && split !== 'test') || captions.length === 0 || typeof id !== 'number') {
      malformed++;
      continue;
    }
    images.push({ filepath: im.filepath ?? '', filename: im.filename, split, captions, id });
  }
  return { images, malformed };
}
