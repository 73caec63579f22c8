// dataset.glue, dataset.cifar and dataset.imagenet against a loopback server
// serving tiny files in the real distribution formats.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ImageDataset } from '../../src/data/image-dataset.js';
import { TextTasks } from '../../src/data/text-tasks.js';
import { cifarKind } from '../../src/stages/data/cifar.js';
import { glueKind } from '../../src/stages/data/glue.js';
import { imagenetKind } from '../../src/stages/data/imagenet.js';
import { makeCtx, withDefaults, type TestCtx } from './ctx.js';
import { makeTar, makeZip, serveBytes, startServer, type TestServer } from './server.js';

let srv: TestServer;
const ctxs: TestCtx[] = [];
const ctx = () => {
  const c = makeCtx();
  ctxs.push(c);
  return c;
};
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  ctxs.forEach((c) => c.cleanup());
  await srv.close();
});

const tsv = (rows: string[][]) => Buffer.from(rows.map((r) => r.join('\t')).join('\n') + '\n');

describe('dataset.glue', () => {
  beforeAll(() => {
    const z = (dir: string, files: Record<string, Buffer>) => serveBytes(makeZip(Object.entries(files).map(([n, data]) => ({ name: `${dir}/${n}`, data }))));
    srv.route(
      '/glue/CoLA.zip',
      z('CoLA', {
        'train.tsv': tsv([['gj04', '1', '', "Our friends won't buy this analysis."], ['gj04', '0', '*', 'They drank the pub.'], ['broken row']]),
        'dev.tsv': tsv([['gj04', '1', '', 'The sailors rode the breeze clear of the rocks.']]),
        'test.tsv': tsv([
          ['index', 'sentence'],
          ['0', 'Bill whistled past the house.'],
        ]),
      }),
    );
    srv.route(
      '/glue/SST-2.zip',
      z('SST-2', {
        'train.tsv': tsv([
          ['sentence', 'label'],
          ['hide new secretions from the parental units ', '0'],
          ['the greatest musicians ', '1'],
        ]),
        'dev.tsv': tsv([
          ['sentence', 'label'],
          ["it 's a charming and often affecting journey . ", '1'],
        ]),
        'test.tsv': tsv([
          ['index', 'sentence'],
          ['0', 'uneasy mishmash of styles and genres .'],
        ]),
      }),
    );
    const mnliHead = [
      'index',
      'promptID',
      'pairID',
      'genre',
      'sentence1_binary_parse',
      'sentence2_binary_parse',
      'sentence1_parse',
      'sentence2_parse',
      'sentence1',
      'sentence2',
    ];
    const mrow = (g: string, extra: string[]) => [
      '0',
      '31193',
      '31193n',
      'government',
      '( ( x ) )',
      '( y )',
      '(ROOT x)',
      '(ROOT y)',
      'Conceptually cream skimming has two basic dimensions.',
      'Product and geography are what make cream skimming work.',
      ...extra,
      g,
    ];
    srv.route(
      '/glue/MNLI.zip',
      z('MNLI', {
        'train.tsv': tsv([[...mnliHead, 'label1', 'gold_label'], mrow('neutral', ['neutral']), mrow('contradiction', ['contradiction']), mrow('maybe', ['x'])]),
        'dev_matched.tsv': tsv([
          [...mnliHead, 'label1', 'label2', 'label3', 'label4', 'label5', 'gold_label'],
          mrow('entailment', ['entailment', 'entailment', 'neutral', 'entailment', 'entailment']),
        ]),
        'dev_mismatched.tsv': tsv([
          [...mnliHead, 'label1', 'label2', 'label3', 'label4', 'label5', 'gold_label'],
          mrow('contradiction', ['contradiction', 'x', 'x', 'x', 'x']),
        ]),
        'test_matched.tsv': tsv([mnliHead, mrow('', []).slice(0, -1)]),
      }),
    );
    srv.route(
      '/glue/STS-B.zip',
      z('STS-B', {
        'train.tsv': tsv([
          ['index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2', 'sentence1', 'sentence2', 'score'],
          ['0', 'main-captions', 'MSRvid', '2012test', '0001', 'none', 'none', 'A plane is taking off.', 'An air plane is taking off.', '5.000'],
        ]),
        'dev.tsv': tsv([
          ['index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2', 'sentence1', 'sentence2', 'score'],
          [
            '0',
            'main-captions',
            'MSRvid',
            '2012test',
            '0000',
            'none',
            'none',
            'A man with a hard hat is dancing.',
            'A man wearing a hard hat is dancing.',
            '5.000',
          ],
          ['1', 'x', 'x', 'x', 'x', 'x', 'x', 'A young child is riding a horse.', 'A child is riding a horse.', '4.750'],
        ]),
      }),
    );
    const mrpcHead = ['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'];
    srv.route(
      '/mrpc/msr_paraphrase_train.txt',
      serveBytes(
        tsv([
          mrpcHead,
          ['1', '702876', '702977', 'Amrozi accused his brother.', 'Referring to him as only "the witness".'],
          ['0', '2108705', '2108831', "Yucaipa owned Dominick 's.", 'Yucaipa bought Dominick in 1995.'],
          ['1', '1330381', '1330521', 'They had published an advertisement.', 'On June 10, the ship owners published an advertisement.'],
        ]),
      ),
    );
    srv.route(
      '/mrpc/msr_paraphrase_test.txt',
      serveBytes(tsv([mrpcHead, ['1', '1089874', '1089925', "PCCW 's chief operating officer.", 'Current Chief Operating Officer Mike Butcher.']])),
    );
    srv.route('/glue/mrpc_dev_ids.tsv', serveBytes(tsv([['2108705', '2108831']])));
  });

  test('converts the original GLUE files: headers, CoLA without one, MNLI gold labels, MRPC split by dev ids, unlabelled tests', async () => {
    const c = ctx();
    await glueKind.run(
      c,
      await withDefaults(glueKind.params, { tasks: ['cola', 'sst2', 'mnli', 'stsb', 'mrpc'], base_url: `${srv.url}/glue`, mrpc_url: `${srv.url}/mrpc` }),
    );
    const t = await TextTasks.open(join(c.outDir, 'glue'));
    expect(t.names).toEqual(['cola', 'sst2', 'mnli', 'stsb', 'mrpc']);
    expect(await t.examples('cola', 'train')).toEqual([
      { idx: 0, text: "Our friends won't buy this analysis.", label: 1 },
      { idx: 1, text: 'They drank the pub.', label: 0 },
    ]);
    expect(await t.examples('cola', 'test')).toEqual([{ idx: 0, text: 'Bill whistled past the house.', label: -1 }]);
    expect((await t.examples('sst2', 'validation'))[0]).toMatchObject({ label: 1 });
    expect((await t.examples('mnli', 'train')).map((e) => e.label)).toEqual([1, 2]);
    expect((await t.examples('mnli', 'validation_matched'))[0]).toMatchObject({
      text_pair: 'Product and geography are what make cream skimming work.',
      label: 0,
    });
    expect(t.spec('mnli').splits).toEqual({ train: 2, validation_matched: 1, validation_mismatched: 1, test_matched: 1 });
    expect((await t.examples('stsb', 'validation')).map((e) => e.label)).toEqual([5, 4.75]);
    expect(t.spec('stsb').splits.test).toBeUndefined();
    expect((await t.examples('mrpc', 'validation')).map((e) => e.text)).toEqual(["Yucaipa owned Dominick 's."]);
    expect((await t.examples('mrpc', 'train')).map((e) => e.label)).toEqual([1, 1]);
    const stats = JSON.parse(readFileSync(join(c.outDir, 'stats.json'), 'utf8'));
    expect(stats.cola.train).toEqual({ examples: 2, malformed: 1 });
    expect(stats.mnli.train).toEqual({ examples: 2, malformed: 1 });
    expect(c.logs.some((l) => /GLUE stsb: .*test\.tsv.*left out|STS-B.zip has no test.tsv/.test(l.msg))).toBe(true);
  });
});

function cifarRecord(labels: number[], rgb: [number, number, number]): Buffer {
  const planes = Buffer.concat(rgb.map((v) => Buffer.alloc(1024, v)));
  return Buffer.concat([Buffer.from(labels), planes]);
}

describe('dataset.cifar', () => {
  test('CIFAR-10 binary batches become 32x32 PNGs with labels and class names', async () => {
    const names = 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n';
    const batch = (k: number) => Buffer.concat([cifarRecord([k], [255, 0, 128]), cifarRecord([9 - k], [0, 200, 0])]);
    const tar = await makeTar([
      { name: 'cifar-10-batches-bin/batches.meta.txt', data: Buffer.from(names) },
      ...[1, 2, 3, 4, 5].map((i) => ({ name: `cifar-10-batches-bin/data_batch_${i}.bin`, data: batch(i) })),
      { name: 'cifar-10-batches-bin/test_batch.bin', data: batch(0) },
    ]);
    srv.route('/cifar-10-binary.tar.gz', serveBytes(gzipSync(tar)));
    const c = ctx();
    await cifarKind.run(c, await withDefaults(cifarKind.params, { url: `${srv.url}/cifar-10-binary.tar.gz` }));
    const ds = await ImageDataset.open(join(c.outDir, 'images'), 'image-class');
    expect(ds.classes).toEqual(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    expect(ds.descriptor.splits).toEqual({ train: 10, test: 2 });
    const train = await ds.records('train');
    expect(train.map((r) => r.label)).toEqual([1, 8, 2, 7, 3, 6, 4, 5, 5, 4]);
    const { data, info } = await sharp(await ds.readImage(train[0]!))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([32, 32]);
    expect([...data.subarray(0, 3)]).toEqual([255, 0, 128]);
  });

  test('CIFAR-100 fine or coarse labels; a truncated batch file is a clear error', async () => {
    const tar = await makeTar([
      { name: 'cifar-100-binary/fine_label_names.txt', data: Buffer.from(Array.from({ length: 100 }, (_, i) => `fine_${i}`).join('\n')) },
      { name: 'cifar-100-binary/coarse_label_names.txt', data: Buffer.from(Array.from({ length: 20 }, (_, i) => `coarse_${i}`).join('\n')) },
      { name: 'cifar-100-binary/train.bin', data: Buffer.concat([cifarRecord([3, 42], [1, 2, 3]), cifarRecord([19, 99], [4, 5, 6])]) },
      { name: 'cifar-100-binary/test.bin', data: cifarRecord([0, 7], [7, 8, 9]) },
    ]);
    srv.route('/cifar-100-binary.tar.gz', serveBytes(gzipSync(tar)));
    const c = ctx();
    await cifarKind.run(c, await withDefaults(cifarKind.params, { variant: 'cifar100', url: `${srv.url}/cifar-100-binary.tar.gz`, label: 'coarse' }));
    const ds = await ImageDataset.open(join(c.outDir, 'images'));
    expect(ds.classes[19]).toBe('coarse 19');
    expect((await ds.records('train')).map((r) => r.label)).toEqual([3, 19]);

    const bad = await makeTar([
      { name: 'cifar-100-binary/fine_label_names.txt', data: Buffer.from('a\nb') },
      { name: 'cifar-100-binary/train.bin', data: cifarRecord([0, 1], [1, 1, 1]).subarray(0, 3000) },
      { name: 'cifar-100-binary/test.bin', data: cifarRecord([0, 1], [1, 1, 1]) },
    ]);
    srv.route('/bad-cifar.tar.gz', serveBytes(gzipSync(bad)));
    await expect(cifarKind.run(ctx(), await withDefaults(cifarKind.params, { variant: 'cifar100', url: `${srv.url}/bad-cifar.tar.gz` }))).rejects.toThrow(
      /train\.bin: 3000 bytes is not a whole number of 3074-byte records; the file is truncated/,
    );
  });
});

describe('dataset.imagenet', () => {
  const TOKEN = 'hf_SeCrEtToKeN1234567890';
  const classesPy = `from collections import OrderedDict\n\nIMAGENET2012_CLASSES = OrderedDict(\n    {\n        "n01440764": "tench, Tinca tinca",\n        "n01443537": "goldfish, Carassius auratus",\n        "n01484850": "great white shark, white shark, man-eater",\n    }\n)\n`;

  beforeAll(async () => {
    const img = (r: number) =>
      sharp({ create: { width: 50, height: 40, channels: 3, background: { r, g: 0, b: 0 } } })
        .jpeg()
        .toBuffer();
    const val = await makeTar([
      { name: 'ILSVRC2012_val_00000001_n01443537.JPEG', data: await img(10) },
      { name: 'ILSVRC2012_val_00000002_n01440764.JPEG', data: await img(20) },
      { name: 'ILSVRC2012_val_00000003_n09999999.JPEG', data: await img(30) },
      { name: 'ILSVRC2012_val_00000004_n01484850.JPEG', data: Buffer.from('<html>oops</html>') },
    ]);
    const gated = (body: Buffer) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, n: number) => {
      if (req.headers.authorization !== `Bearer ${TOKEN}`)
        return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Access to dataset ILSVRC/imagenet-1k is restricted"}');
      return serveBytes(body)(req, res, n);
    };
    srv.route('/hf/datasets/ILSVRC/imagenet-1k/resolve/main/classes.py', gated(Buffer.from(classesPy)));
    srv.route('/hf/datasets/ILSVRC/imagenet-1k/resolve/main/data/val_images.tar.gz', gated(gzipSync(val)));
  });

  function withEnv<T>(env: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
    const old = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    for (const [k, v] of Object.entries(env)) v === undefined ? delete process.env[k] : (process.env[k] = v);
    return fn().finally(() => {
      for (const [k, v] of Object.entries(old)) v === undefined ? delete process.env[k] : (process.env[k] = v);
    });
  }

  function everythingWritten(c: TestCtx): string {
    const parts = [JSON.stringify(c.logs), JSON.stringify(c.metrics), JSON.stringify(c.progressed)];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else parts.push(readFileSync(p).toString('latin1'));
      }
    };
    walk(c.outDir);
    walk(c.scratchDir);
    return parts.join('\n');
  }

  test('without HF_TOKEN: a clear error saying where to accept the terms', async () => {
    const p = await withDefaults(imagenetKind.params, {});
    expect(imagenetKind.env!(p)).not.toContain('HF_TOKEN');
    await withEnv({ HF_TOKEN: undefined, HF_ENDPOINT: `${srv.url}/hf` }, () =>
      expect(imagenetKind.run(ctx(), p)).rejects.toThrow(/gated: accept its terms at https:\/\/huggingface.co\/datasets\/ILSVRC\/imagenet-1k and set HF_TOKEN/),
    );
  });

  test('a rejected token fails clearly without revealing it', async () => {
    const c = ctx();
    const err = await withEnv({ HF_TOKEN: 'hf_wrongwrongwrong', HF_ENDPOINT: `${srv.url}/hf` }, () =>
      imagenetKind.run(c, withDefaultsSync()).catch((e: Error) => e),
    );
    expect(String((err as Error).message)).toMatch(/the HF hub refused classes.py \(401\): HF_TOKEN is invalid/);
    expect(String((err as Error).message) + (err as Error).stack).not.toContain('hf_wrongwrongwrong');
    expect(everythingWritten(c)).not.toContain('hf_wrongwrongwrong');
  });

  test('downloads through HF_ENDPOINT with the token, labels from synsets, names for zero-shot; the token appears nowhere', async () => {
    const c = ctx();
    await withEnv({ HF_TOKEN: TOKEN, HF_ENDPOINT: `${srv.url}/hf/` }, async () => imagenetKind.run(c, await withDefaults(imagenetKind.params, {})));
    const ds = await ImageDataset.open(join(c.outDir, 'images'), 'image-class');
    expect(ds.classes).toEqual(['tench', 'goldfish', 'great white shark']);
    const val = await ds.records('val');
    expect(val.map((r) => [r.id, r.label])).toEqual([
      ['ILSVRC2012_val_00000001_n01443537', 1],
      ['ILSVRC2012_val_00000002_n01440764', 0],
    ]);
    expect(JSON.parse(readFileSync(join(c.outDir, 'stats.json'), 'utf8')).dropped).toEqual({ unknown_class: 1, html: 1 });
    expect(JSON.parse(readFileSync(join(c.outDir, 'synsets.json'), 'utf8'))[2]).toEqual({
      label: 2,
      synset: 'n01484850',
      name: 'great white shark, white shark, man-eater',
    });
    expect(everythingWritten(c)).not.toContain(TOKEN);
  });

  function withDefaultsSync(): Record<string, any> {
    return { repo: 'ILSVRC/imagenet-1k', revision: 'main', splits: ['val'], train_shards: 5, image_size: 0, shard_size: 1000 };
  }
});
