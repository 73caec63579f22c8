#!/usr/bin/env python3
"""Independent reference values for src/ml's optimiser, metrics and tokenizer.

Written from the definitions, not from smke's code:
- Hugging Face's get_cosine_schedule_with_warmup (LambdaLR, stepped once per update);
- PyTorch's AdamW (_single_tensor_adamw: per-parameter `step`, decoupled decay,
  parameters without a gradient skipped entirely);
- BERT's BasicTokenizer / WordpieceTokenizer (transformers' slow BertTokenizer)
  and truncate_sequences 'longest_first' (and Google BERT's _truncate_seq_pair);
- scipy.stats.pearsonr / spearmanr (rankdata 'average');
- sklearn's f1_score (binary) and matthews_corrcoef;
- recall@k / top-k accuracy where ties and NaN scores count against the model.

Only python3 and numpy are needed. The tests never run this script: they read
the JSON it writes. To regenerate the fixtures (after changing a case here):

    python3 test/reference/sci_reference.py

which rewrites test/fixtures/reference/*.json; commit them with this file.
"""

import json
import math
import os
import unicodedata

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'reference')


def dump(name, obj):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, 'w', encoding='utf-8') as f:
        # One case per line. allow_nan=False: JSON has no NaN; non-finite values are written as strings (num()).
        f.write('{\n')
        items = list(obj.items())
        for i, (key, value) in enumerate(items):
            f.write(f' {json.dumps(key)}: ')
            if isinstance(value, list):
                f.write('[\n' + ',\n'.join('  ' + json.dumps(v, ensure_ascii=True, allow_nan=False) for v in value) + '\n ]')
            else:
                f.write(json.dumps(value, ensure_ascii=True, allow_nan=False))
            f.write(',\n' if i + 1 < len(items) else '\n')
        f.write('}\n')
    print('wrote', os.path.relpath(path))


def num(x):
    """A float for JSON: NaN and infinities as the strings 'NaN', 'Infinity', '-Infinity'."""
    x = float(x)
    if math.isnan(x):
        return 'NaN'
    if math.isinf(x):
        return 'Infinity' if x > 0 else '-Infinity'
    return x


# ---------------------------------------------------------------- schedule

def hf_cosine_lambda(current_step, num_warmup_steps, num_training_steps, num_cycles=0.5):
    # transformers.optimization._get_cosine_schedule_with_warmup_lr_lambda
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def hf_schedule_lrs(base, warmup, total):
    """The lr of each optimizer.step(), as a training loop with LambdaLR sees it:
    LambdaLR sets lr = base * lambda(0) at construction; after every update
    scheduler.step() advances the epoch counter by one."""
    lrs = []
    epoch = 0  # LambdaLR.last_epoch after construction
    for _ in range(total):
        lrs.append(base * hf_cosine_lambda(epoch, warmup, total))  # optimizer.step() uses this
        epoch += 1  # scheduler.step()
    return lrs


def schedule_fixture():
    cases = []
    for base, warmup, total in [(1e-3, 10, 100), (1.0, 10, 110), (2e-3, 0, 50), (5e-4, 1, 7), (3e-5, 3, 4), (1e-2, 5, 5), (0.1, 30, 300)]:
        cases.append({'base': base, 'warmup': warmup, 'total': total, 'lr': hf_schedule_lrs(base, warmup, total)})
    dump('schedule.json', {'source': 'transformers get_cosine_schedule_with_warmup, one scheduler.step() per update', 'cases': cases})


# ---------------------------------------------------------------- AdamW

def torch_adamw(params, decay, steps, betas, eps, weight_decay):
    """params: name -> float64 array; decay: name -> bool (param group with or
    without weight decay); steps: list of {'lr': float, 'grads': {name: array}}
    where a parameter absent from 'grads' has p.grad None on that step.
    Returns the parameters after every step."""
    beta1, beta2 = betas
    state = {}
    history = []
    for st in steps:
        lr = st['lr']
        for name, p in params.items():
            g = st['grads'].get(name)
            if g is None:
                continue  # torch: `if p.grad is None: continue` -- no decay, no moment update, no step
            s = state.setdefault(name, {'step': 0, 'exp_avg': np.zeros_like(p), 'exp_avg_sq': np.zeros_like(p)})
            s['step'] += 1
            wd = weight_decay if decay[name] else 0.0
            p *= 1 - lr * wd
            s['exp_avg'] += (g - s['exp_avg']) * (1 - beta1)  # lerp_
            s['exp_avg_sq'] = s['exp_avg_sq'] * beta2 + (1 - beta2) * g * g
            bc1 = 1 - beta1 ** s['step']
            bc2 = 1 - beta2 ** s['step']
            step_size = lr / bc1
            denom = np.sqrt(s['exp_avg_sq']) / math.sqrt(bc2) + eps
            p -= step_size * s['exp_avg'] / denom
        history.append({n: v.copy().ravel().tolist() for n, v in params.items()})
    return history, {n: s['step'] for n, s in state.items()}


def adamw_fixture():
    rng = np.random.default_rng(13)
    shapes = {'w': [2, 3], 'b': [3], 'e': [4, 2]}
    kinds = {'w': 'matrix', 'b': 'bias', 'e': 'embedding'}  # decay only for the matrix
    decay = {'w': True, 'b': False, 'e': False}
    cases = []
    # Which parameters get a gradient on each step: b is frozen for the first two
    # steps and then unfrozen; e gets gradients only now and then (a skipped
    # parameter, e.g. a token row that no batch contains).
    present = [['w', 'e'], ['w'], ['w', 'b'], ['w', 'b', 'e'], ['w', 'b'], ['w', 'e'], ['w', 'b', 'e']]
    for ci, (betas, eps, wd) in enumerate([((0.9, 0.98), 1e-6, 0.01), ((0.9, 0.999), 1e-8, 0.5), ((0.8, 0.9), 1e-3, 0.1)]):
        init = {n: rng.normal(0, 1, size=s) for n, s in shapes.items()}
        steps = []
        for t, names in enumerate(present):
            lr = [0.1, 0.05, 0.02, 0.1, 0.0, 0.03, 0.01][t]
            grads = {n: rng.normal(0, 1 + ci, size=shapes[n]) for n in names}
            steps.append({'lr': lr, 'grads': grads})
        params = {n: v.copy() for n, v in init.items()}
        history, counts = torch_adamw(params, decay, steps, betas, eps, wd)
        cases.append({
            'beta1': betas[0], 'beta2': betas[1], 'eps': eps, 'weightDecay': wd,
            'params': {n: {'shape': shapes[n], 'kind': kinds[n], 'init': init[n].ravel().tolist()} for n in shapes},
            'steps': [{'lr': s['lr'], 'grads': {n: g.ravel().tolist() for n, g in s['grads'].items()}} for s in steps],
            'after': history,
            'counts': counts,
        })
    dump('adamw.json', {'source': 'torch.optim.AdamW (_single_tensor_adamw), float64', 'cases': cases})


# ---------------------------------------------------------------- tokenizer (transformers BertTokenizer, slow)

def _is_whitespace(char):
    if char == ' ' or char == '\t' or char == '\n' or char == '\r':
        return True
    return unicodedata.category(char) == 'Zs'


def _is_control(char):
    if char == '\t' or char == '\n' or char == '\r':
        return False
    return unicodedata.category(char).startswith('C')


def _is_punctuation(char):
    cp = ord(char)
    if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (123 <= cp <= 126):
        return True
    return unicodedata.category(char).startswith('P')


def _is_chinese_char(cp):
    return ((0x4E00 <= cp <= 0x9FFF) or (0x3400 <= cp <= 0x4DBF) or (0x20000 <= cp <= 0x2A6DF)
            or (0x2A700 <= cp <= 0x2B73F) or (0x2B740 <= cp <= 0x2B81F) or (0x2B820 <= cp <= 0x2CEAF)
            or (0xF900 <= cp <= 0xFAFF) or (0x2F800 <= cp <= 0x2FA1F))


def whitespace_tokenize(text):
    text = text.strip()
    return text.split() if text else []


def basic_tokenize(text):
    # _clean_text
    out = []
    for char in text:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            continue
        out.append(' ' if _is_whitespace(char) else char)
    text = ''.join(out)
    # _tokenize_chinese_chars
    text = ''.join(f' {c} ' if _is_chinese_char(ord(c)) else c for c in text)
    text = unicodedata.normalize('NFC', text)
    split_tokens = []
    for token in whitespace_tokenize(text):
        token = token.lower()  # do_lower_case (uncased)
        # _run_strip_accents
        token = ''.join(c for c in unicodedata.normalize('NFD', token) if unicodedata.category(c) != 'Mn')
        # _run_split_on_punc
        words, start_new = [], True
        for c in token:
            if _is_punctuation(c):
                words.append([c])
                start_new = True
            else:
                if start_new:
                    words.append([])
                start_new = False
                words[-1].append(c)
        split_tokens.extend(''.join(w) for w in words)
    return whitespace_tokenize(' '.join(split_tokens))


def wordpiece(tokens, vocab, unk='[UNK]', max_chars=100):
    out = []
    for token in tokens:
        chars = list(token)
        if len(chars) > max_chars:
            out.append(unk)
            continue
        is_bad, start, sub_tokens = False, 0, []
        while start < len(chars):
            end, cur = len(chars), None
            while start < end:
                substr = ''.join(chars[start:end])
                if start > 0:
                    substr = '##' + substr
                if substr in vocab:
                    cur = substr
                    break
                end -= 1
            if cur is None:
                is_bad = True
                break
            sub_tokens.append(cur)
            start = end
        out.extend([unk] if is_bad else sub_tokens)
    return out


TEXTS = [
    'Héllo, World!  don\'t',
    # accents (stripped for uncased), composed and decomposed forms
    'Crème Brûlée à la carte; naïve façade, ÅNGSTRÖM, Ørsted, Łódź',
    'Cafe\u0301 re\u0301sume\u0301 vs Café résumé',
    'Straße ΟΔΟΣ Σίσυφος İstanbul ǅemal ﬁne ﬂow',
    # format characters (Cf) are removed, never a split or [UNK]
    'soft\u00adhyphen zero\u200bwidth\ufeffbom word\u200djoiner left\u200eright \u2060wj \u180emvs',
    # control characters: removed (incl. vertical tab, form feed, NEL, separators 1C-1F); tab/newline/CR are spaces
    'a\u000bb c\u000cd e\u0085f g\u001ch i\u001fj k\tl m\nn o\rp q\u0007r s\u0000t u\ufffdv',
    # whitespace classes: Zs become spaces; line/paragraph separators split too
    'nbsp\u00a0here ogham\u1680mark en\u2002em\u2003thin\u2009hair\u200a narrow\u202fmath\u205fideo\u3000space line\u2028para\u2029end',
    # punctuation: every ASCII symbol, Unicode P* classes, and symbols that are not punctuation
    'a$b+c<d=e>f^g`h|i~j #k%l&m*n@o\\p/q_r{s}t[u]v(w)x"y\'z',
    '«quotes» „low“ ‘single’ — dash – ¿qué? ¡sí! 。、「」 ‥ … ※ § ¶ · © ® ™ ° ± × ÷ € £ ¥ ¢',
    # CJK: BMP ranges, compatibility ideographs, and planes 2 (Ext B..F, compatibility supplement)
    '中文字符测试 漢字かなカナ한국어 㐀㐁 豈更',
    '𠀀𠀁 a𪜀b 𫝀𫠠 𬺰 丽丸 𠮷野家 ⼀⺀ ㄅ',
    # emoji, surrogate-pair symbols and math alphanumerics are not CJK: kept inside words
    'emoji😀inside 👍🏽ok 𝐁𝐨𝐥𝐝 family👨‍👩‍👧',
    # digits and other scripts
    '١٢٣ ४५६ 3.14 1,000 x² ½ Ⅻ',
    'Привет, мир! Γειά σου Κόσμε; שלום עולם; مرحبا بالعالم؛ नमस्ते दुनिया। สวัสดีชาวโลก ｆｕｌｌｗｉｄｔｈ　ＡＢＣ！',
    # private use (Co) and noncharacters are removed; combining marks alone
    'pu\ue000a x\u0301\u0302 \u0301alone \u20dd',
    '',
    '   \t\n  ',
    '[CLS] [SEP] ##x ## # a.b.c...d',
    'U.S.A. e-mail (x) [y] {z} <w> "q" it\'s rock\'n\'roll',
]

WP_VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'un', '##aff', '##able', 'the', 'a', '##ff', 'runn', '##ing', ',', 'cafe', 'resume', '##s',
            'soft', '##hy', '##phen', 'hyphen', 'zero', '##width', 'width', 'bom', 'word', '##joiner', 'joiner', '中', '文', '𠀀', '𠀁', 'x', '##y', 'y', 'e', '##mail', '-', '.', '##a']

WP_TEXTS = ['UNAFFABLE running, xyz', 'Café Résumés', 'soft\u00adhyphen zero\u200bwidth\ufeffbom word\u200djoiner', '中文𠀀𠀁', 'xy yx e-mail.', 'a' * 101, 'a' * 100]


# Characters whose class changed between Python 3.11's Unicode 14 and Node 20's
# ICU (Unicode 17): left out of the exhaustive comparison.
UNICODE_VERSION_DIFFS = {0x1171E: 'AHOM CONSONANT SIGN MEDIAL RA: Mn in Unicode 14, Mc from 15 (kept, not stripped)'}


def exhaustive_blocks():
    """Every code point assigned in this Python's Unicode (surrogates aside),
    tokenised inside a word and alone: 'xA<c>Bx <c>'. Per block of 4096 code
    points, the assigned ones as [start, end] ranges and the sha256 of
    '<cp>:<tok>\\x01<tok>...\\x02' over them, so a failing test names the block."""
    import hashlib
    blocks = []
    for base in range(0, 0x110000, 0x1000):
        ranges, h, count = [], hashlib.sha256(), 0
        for c in range(base, base + 0x1000):
            if 0xD800 <= c <= 0xDFFF or c in UNICODE_VERSION_DIFFS or unicodedata.category(chr(c)) == 'Cn':
                continue
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
            ch = chr(c)
            h.update((f'{c}:' + '\x01'.join(basic_tokenize(f'xA{ch}Bx {ch}')) + '\x02').encode('utf-8'))
            count += 1
        if count:
            blocks.append({'base': base, 'ranges': ranges, 'sha256': h.hexdigest()})
    return blocks


def tokenizer_fixture():
    basic = [{'text': t, 'tokens': basic_tokenize(t)} for t in TEXTS]
    vocab = set(WP_VOCAB)
    wp = [{'text': t, 'pieces': wordpiece(basic_tokenize(t), vocab)} for t in WP_TEXTS]
    dump('tokenizer.json', {
        'source': 'transformers BertTokenizer (slow) BasicTokenizer(do_lower_case=True) + WordpieceTokenizer, Python unicodedata ' + unicodedata.unidata_version,
        'basic': basic, 'vocab': WP_VOCAB, 'wordpiece': wp,
    })
    dump('tokenizer-all.json', {
        'source': 'BasicTokenizer over every assigned code point of Python unicodedata ' + unicodedata.unidata_version + ", as 'xA<c>Bx <c>'",
        'skipped': {hex(c): why for c, why in UNICODE_VERSION_DIFFS.items()},
        'blocks': exhaustive_blocks(),
    })


# ---------------------------------------------------------------- pair truncation

def hf_longest_first(len_ids, len_pair, num_tokens_to_remove):
    # transformers PreTrainedTokenizerBase.truncate_sequences, LONGEST_FIRST, truncation_side right
    first_remove = min(abs(len_pair - len_ids), num_tokens_to_remove)
    second_remove = num_tokens_to_remove - first_remove
    if len_ids > len_pair:
        ids_to_move = first_remove + second_remove // 2
        pair_to_move = second_remove - second_remove // 2
    else:
        ids_to_move = second_remove // 2
        pair_to_move = first_remove + second_remove - second_remove // 2
    return len_ids - ids_to_move, len_pair - pair_to_move


def bert_truncate_seq_pair(a, b, max_length):
    # google-research/bert run_classifier._truncate_seq_pair
    a, b = list(range(a)), list(range(b))
    while len(a) + len(b) > max_length:
        (a if len(a) > len(b) else b).pop()
    return len(a), len(b)


def truncation_fixture():
    cases = []
    for la in range(0, 13):
        for lb in range(0, 13):
            for max_len in (3, 4, 7, 10, 16):
                budget = max_len - 3
                remove = max(0, la + lb - budget)
                keep = hf_longest_first(la, lb, remove) if remove > 0 else (la, lb)
                assert keep == bert_truncate_seq_pair(la, lb, budget), (la, lb, max_len)
                cases.append({'a': la, 'b': lb, 'maxLen': max_len, 'keepA': keep[0], 'keepB': keep[1]})
    single = [{'a': la, 'maxLen': m, 'keepA': min(la, m - 2)} for la in range(0, 12) for m in (2, 5, 9)]
    dump('truncation.json', {'source': "transformers truncate_sequences 'longest_first' == BERT _truncate_seq_pair, with [CLS] a [SEP] b [SEP]", 'pairs': cases, 'single': single})


# ---------------------------------------------------------------- correlations

def rankdata_average(v):
    # scipy.stats.rankdata(method='average'), from the definition: #less + (#equal + 1) / 2
    v = np.asarray(v, dtype=np.float64)
    return np.array([np.sum(v < x) + (np.sum(v == x) + 1) / 2 for x in v])


def scipy_pearsonr(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if (x == x[0]).all() or (y == y[0]).all():
        return math.nan  # ConstantInputWarning, r = nan
    xm = x - x.mean()
    ym = y - y.mean()
    # scipy rescales by the max |value| first so that the norms cannot overflow
    xm = xm / np.max(np.abs(xm))
    ym = ym / np.max(np.abs(ym))
    r = float(np.dot(xm / np.linalg.norm(xm), ym / np.linalg.norm(ym)))
    return max(min(r, 1.0), -1.0)


def correlation_fixture():
    rng = np.random.default_rng(7)
    cases = [
        ([1, 2, 3], [2, 4, 6]),
        ([1, 2, 3], [5, 3, 2]),
        ([7, 7, 8, 9], [0.1, 0.2, 0.3, 0.4]),
        ([1, 2], [2, 1]),
        ([3, 3, 3, 3], [1, 2, 3, 4]),          # constant prediction
        ([1, 2, 3, 4], [5, 5, 5, 5]),          # constant gold
        ([2.5], [1.0]),                        # a single pair is constant
        ([0.1, 0.1, 0.1], [1, 2, 3]),          # constant whose float mean is not exactly 0.1
        ([1e200, 2e200, 4e200], [1, 2, 3.5]),  # sums of squares overflow a float64
        ([1e-200, 2e-200, 4e-200], [3, 2, 1]),
        ([1e9 + 1, 1e9 + 2, 1e9 + 3, 1e9 + 5], [4, 1, 3, 2]),  # large offset, small spread
        ([1, 1, 2, 2, 3, 3], [1, 2, 1, 2, 1, 2]),              # ties in both
        ([5, 4, 4, 4, 1], [1, 2, 2, 3, 9]),
    ]
    for n, levels in [(20, 4), (50, 3), (37, 1000), (64, 6)]:
        x = rng.integers(0, levels, size=n).astype(float) / 2
        y = x * 0.5 + rng.integers(0, levels, size=n) / 3
        cases.append((x.tolist(), y.tolist()))
    cases.append((rng.normal(size=40).tolist(), rng.normal(size=40).tolist()))
    out = []
    for x, y in cases:
        out.append({'x': x, 'y': y, 'pearson': num(scipy_pearsonr(x, y)), 'spearman': num(scipy_pearsonr(rankdata_average(x), rankdata_average(y))),
                    'ranksX': rankdata_average(x).tolist()})
    dump('correlations.json', {'source': 'scipy.stats.pearsonr / spearmanr semantics (constant input -> NaN), rankdata average', 'cases': out})


# ---------------------------------------------------------------- classification metrics

def classification_fixture():
    rng = np.random.default_rng(3)
    cases = []
    for n, p in [(8, 0.5), (30, 0.2), (30, 0.8), (5, 0.0), (5, 1.0), (50, 0.5)]:
        gold = (rng.random(n) < 0.5).astype(int)
        flip = rng.random(n) < 0.3
        pred = np.where(flip, 1 - gold, gold) if p not in (0.0, 1.0) else np.full(n, int(p))
        tp = int(np.sum((pred == 1) & (gold == 1))); tn = int(np.sum((pred == 0) & (gold == 0)))
        fp = int(np.sum((pred == 1) & (gold == 0))); fn = int(np.sum((pred == 0) & (gold == 1)))
        f1 = 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)  # sklearn f1_score, zero_division=0
        # sklearn matthews_corrcoef: cov(y, yhat) from the confusion matrix; 0 when a variance is 0
        C = np.array([[tn, fp], [fn, tp]], dtype=np.float64)
        t_sum, p_sum = C.sum(axis=1), C.sum(axis=0)
        n_correct, n_samples = np.trace(C), C.sum()
        cov_ytyp = n_correct * n_samples - np.dot(t_sum, p_sum)
        cov_ypyp = n_samples ** 2 - np.dot(p_sum, p_sum)
        cov_ytyt = n_samples ** 2 - np.dot(t_sum, t_sum)
        mcc = 0.0 if cov_ypyp * cov_ytyt == 0 else cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp)
        cases.append({'pred': pred.tolist(), 'gold': gold.tolist(), 'accuracy': float(np.mean(pred == gold)), 'f1': f1, 'matthews': float(mcc)})
    dump('classification.json', {'source': 'sklearn accuracy_score, f1_score (binary, zero_division=0), matthews_corrcoef', 'cases': cases})


# ---------------------------------------------------------------- ranking: recall@k, top-k

def first_true_position(scores, is_true):
    """0-based position of the best true item in the ranking of all items, where
    the ranking sorts by score descending, puts wrong items before true ones on
    a tie, puts a NaN wrong item at the very top and drops a NaN true item (a
    NaN score never helps). Other true items do not push the best one down.
    None when no true item is left."""
    order = []
    for i, (s, t) in enumerate(zip(scores, is_true)):
        if math.isnan(s):
            if t:
                continue
            order.append((0, 0.0, 0, i))
        else:
            order.append((1, -s, 1 if t else 0, i))
    order.sort()
    wrong_before = 0
    for _, _, t, _ in order:
        if t:
            return wrong_before
        wrong_before += 1
    return None


def retrieval_ref(sim, n_images, caption_image, ks):
    sim = np.asarray(sim, dtype=np.float64).reshape(n_images, len(caption_image))
    tr_rank = [first_true_position(sim[i].tolist(), [c == i for c in caption_image]) for i in range(n_images)]
    ir_rank = [first_true_position(sim[:, j].tolist(), [i == caption_image[j] for i in range(n_images)]) for j in range(len(caption_image))]
    hit = lambda r, k: r is not None and r < k
    return ({str(k): sum(hit(r, k) for r in tr_rank) / n_images for k in ks},
            {str(k): sum(hit(r, k) for r in ir_rank) / len(caption_image) for k in ks})


def ranking_fixture():
    rng = np.random.default_rng(11)
    retrieval, topk = [], []
    specs = [('random', 0), ('coarse', 3), ('constant', 0), ('nan', 0), ('inf', 0), ('allnan-true', 0), ('coarse', 2)]
    for si, (kind, levels) in enumerate(specs):
        n_images = 4 + si % 3
        caption_image = sorted([i for i in range(n_images)] + rng.integers(0, n_images, size=n_images).tolist())
        n_caps = len(caption_image)
        if kind == 'constant':
            sim = np.full((n_images, n_caps), 0.25)
        elif kind == 'coarse':
            sim = rng.integers(0, levels, size=(n_images, n_caps)).astype(float)
        else:
            sim = rng.normal(size=(n_images, n_caps))
            for i in range(n_images):  # make the true pairs likely winners
                for j, c in enumerate(caption_image):
                    if c == i:
                        sim[i, j] += 1.5
        if kind == 'nan':
            sim[0, caption_image.index(0)] = math.nan       # a true score
            sim[1, caption_image.index(0)] = math.nan       # a wrong score
            sim[2, :] = math.nan
        if kind == 'inf':
            sim[0, caption_image.index(0)] = math.inf
            sim[0, caption_image.index(1)] = math.inf       # tie at +inf with a wrong caption
            sim[1, caption_image.index(1)] = -math.inf
            sim[2, caption_image.index(1)] = math.inf       # a wrong caption at +inf
        if kind == 'allnan-true':
            for j, c in enumerate(caption_image):
                sim[c, j] = math.nan
        ks = [1, 2, 5, 10]
        tr, ir = retrieval_ref(sim.ravel().tolist(), n_images, caption_image, ks)
        retrieval.append({'kind': kind, 'nImages': n_images, 'captionImage': caption_image, 'sim': [num(s) for s in sim.ravel()], 'ks': ks, 'tr': tr, 'ir': ir})

    for si, kind in enumerate(['random', 'coarse', 'constant', 'nan', 'inf', 'random']):
        rows, cols = 12, 3 + si
        gold = rng.integers(0, cols, size=rows).tolist()
        if kind == 'constant':
            scores = np.full((rows, cols), -0.5)
        elif kind == 'coarse':
            scores = rng.integers(0, 2, size=(rows, cols)).astype(float)
        else:
            scores = rng.normal(size=(rows, cols))
            for r, g in enumerate(gold):
                scores[r, g] += 1.0
        if kind == 'nan':
            scores[0, gold[0]] = math.nan
            scores[1, (gold[1] + 1) % cols] = math.nan
            scores[2, :] = math.nan
        if kind == 'inf':
            scores[0, gold[0]] = math.inf
            scores[0, (gold[0] + 1) % cols] = math.inf
            scores[1, gold[1]] = math.inf
            scores[2, (gold[2] + 1) % cols] = math.inf
            scores[3, gold[3]] = -math.inf
        ks = [1, 2, 5]
        ranks = [first_true_position(scores[r].tolist(), [c == gold[r] for c in range(cols)]) for r in range(rows)]
        acc = {str(k): sum(r is not None and r < k for r in ranks) / rows for k in ks}
        topk.append({'kind': kind, 'rows': rows, 'cols': cols, 'gold': gold, 'scores': [num(s) for s in scores.ravel()], 'ks': ks, 'topk': acc})
    dump('ranking.json', {'source': 'recall@k / top-k accuracy: ties and NaN scores count against the model', 'retrieval': retrieval, 'topk': topk})


if __name__ == '__main__':
    schedule_fixture()
    adamw_fixture()
    tokenizer_fixture()
    truncation_fixture()
    correlation_fixture()
    classification_fixture()
    ranking_fixture()
