// ImageNet-1k as the HF hub publishes it (ILSVRC/imagenet-1k): classes.py
// maps synsets to names in label order; images sit in tar.gz shards named
// `<id>_<synset>.JPEG`.

/** Synset -> name, in label order, from classes.py (`IMAGENET2012_CLASSES = OrderedDict({"n01440764": "tench, Tinca tinca", ...})`). */
export function parseClassesPy(text: string): { synsets: string[]; names: string[] } {
  const synsets: string[] = [];
  const names: string[] = [];
  const re = /["'](n\d{8})["']\s*[:,]\s*(["'])((?:(?!\2).)*)\2/g;
  for (const m of text.matchAll(re)) {
    synsets.push(m[1]!);
    names.push(m[3]!);
  }
  if (synsets.length === 0) throw new Error('classes.py lists no synsets; is it the ILSVRC/imagenet-1k classes.py?');
  return { synsets, names };
}

/** The synset in an HF ImageNet file name (`ILSVRC2012_val_00000001_n01751748.JPEG`), or undefined (test images have none). */
export function synsetOf(fileName: string): string | undefined {
  return /_(n\d{8})\.[A-Za-z]+$/.exec(fileName)?.[1];
}

/** The everyday name of a class for zero-shot prompts: the first of its comma-separated synonyms. */
export function shortName(name: string): string {
  return name.split(',')[0]!.trim();
}
