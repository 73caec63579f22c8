"""The PyTorch anchor for the paper-width S-SMKE training step.

Builds the same shapes as src/ml's S-SMKE at paper width (ViT-B/16 at 224 and
BERT-base, both truncated to 6 layers, one shared pre-LN block, the KD head,
contrastive KD against a 65,536-entry memory bank and the two ITC losses) in
plain PyTorch, and times forward + backward + AdamW in fp32 (tfjs's webgpu
backend computes in fp32, so mixed precision would not be a like-for-like
anchor). Prints one JSON line. Run on the lent GPU machine by bench/gpu/run.sh.
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# argv: batch steps [device=cuda] [paper|small]; `small` shrinks the widths as tfjs-step.mjs does
# (to check the script on a CPU).
SMALL = len(sys.argv) > 4 and sys.argv[4] == "small"
D, HEADS, MLP, LAYERS = (64, 4, 256, 6) if SMALL else (768, 12, 3072, 6)
IMG, PATCH, TXT_LEN, VOCAB = (32, 8, 16, 500) if SMALL else (224, 16, 64, 30522)
BANK = 256 if SMALL else 65536


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D, eps=1e-6)
        self.attn = nn.MultiheadAttention(D, HEADS, batch_first=True)
        self.ln2 = nn.LayerNorm(D, eps=1e-6)
        self.fc1 = nn.Linear(D, MLP)
        self.fc2 = nn.Linear(MLP, D)

    def forward(self, x, pad=None):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        inter = self.fc1(self.ln2(x))
        return x + self.fc2(F.gelu(inter)), inter


class SSmke(nn.Module):
    def __init__(self):
        super().__init__()
        n = (IMG // PATCH) ** 2
        self.patch = nn.Conv2d(3, D, PATCH, PATCH)
        self.cls = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_img = nn.Parameter(torch.zeros(1, n + 1, D))
        self.img_blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.tok = nn.Embedding(VOCAB, D)
        self.pos_txt = nn.Parameter(torch.zeros(1, TXT_LEN, D))
        self.txt_ln = nn.LayerNorm(D, eps=1e-12)
        self.txt_blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.token_type = nn.Parameter(torch.zeros(2, D))
        self.tt_scale = nn.Parameter(torch.full((D,), 1e-5))
        self.shared = Block()
        self.kd_ln = nn.LayerNorm(D, eps=1e-6)
        self.kd = nn.Linear(D, D)
        self.s0 = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.s1 = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode(self, x, modality, pad=None):
        x = x + self.tt_scale * self.token_type[modality]
        x, inter = self.shared(x, pad)
        cls = x[:, 0]
        return F.normalize(cls, dim=-1), F.normalize(inter[:, 0], dim=-1), F.normalize(self.kd(self.kd_ln(cls)), dim=-1)

    def forward(self, images, ids, pad):
        x = self.patch(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos_img
        for b in self.img_blocks:
            x = b(x)[0]
        t = self.txt_ln(self.tok(ids) + self.pos_txt)
        for b in self.txt_blocks:
            t = b(t, pad)[0]
        return self.encode(x, 0), self.encode(t, 1, pad)


def clip_loss(a, b, scale):
    logits = scale.exp() * a @ b.t()
    labels = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def main():
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    dev = torch.device(sys.argv[3] if len(sys.argv) > 3 else "cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(42)
    model = SSmke().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    bank = F.normalize(torch.rand(BANK, D, device=dev), dim=-1)
    images = torch.randn(batch, 3, IMG, IMG, device=dev)
    ids = torch.randint(0, VOCAB, (batch, TXT_LEN), device=dev)
    pad = torch.zeros(batch, TXT_LEN, dtype=torch.bool, device=dev)
    teacher = F.normalize(torch.randn(batch, D, device=dev), dim=-1)
    labels = torch.arange(batch, device=dev)

    def step():
        (x_i, xi_i, kd_i), (x_t, xi_t, kd_t) = model(images, ids, pad)
        targets = torch.cat([teacher, bank], 0)
        kd = (F.cross_entropy(kd_i @ targets.t() / 0.07, labels) + F.cross_entropy(kd_t @ targets.t() / 0.07, labels)) / 2
        itc = (clip_loss(xi_i, xi_t, model.s0) + clip_loss(x_i, x_t, model.s1)) / 2
        loss = kd + itc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.s0.clamp_(0, 4.6052)
            model.s1.clamp_(0, 4.6052)
        return loss

    for _ in range(3):
        step()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    ms = (time.perf_counter() - t0) / steps * 1000
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"impl": "pytorch-fp32", "batch": batch, "step_ms": round(ms, 2),
                      "examples_per_s": round(batch / ms * 1000, 1), "params": params,
                      "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu", "torch": torch.__version__}))


if __name__ == "__main__":
    main()
