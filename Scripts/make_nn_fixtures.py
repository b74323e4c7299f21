#!/usr/bin/env python3
"""PyTorch reference fixtures for EmberNN / EmberOptim / checkpoints (seeded).

    pip install torch safetensors && python3 Scripts/make_nn_fixtures.py

Writes Tests/EmberTestSupport/Fixtures/nn.json (layers, losses, optimizers, schedulers,
clipping), training.safetensors (10-step MLP/CNN runs: initial weights, batches, losses,
parameters after steps 1 and 10, per-step checksums) and python.safetensors (a file
written by the safetensors package, which Ember must read and reproduce byte for byte).
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file, load_file

torch.manual_seed(0)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "EmberTestSupport", "Fixtures")
os.makedirs(OUT, exist_ok=True)


def t(x):
    x = x.detach()
    return {"shape": list(x.shape), "dtype": str(x.dtype).replace("torch.", ""),
            "data": [float(v) if x.dtype.is_floating_point else int(v) for v in x.reshape(-1).tolist()]}


layers = []


def layer(name, module, inputs, call=None, train=True, extra=None):
    """inputs: list of tensors (float ones get gradients). call(module, *inputs) -> output tensor."""
    module.train(train)
    state = {k: t(v) for k, v in module.state_dict().items()}
    ins = [x.clone().requires_grad_(x.dtype.is_floating_point) for x in inputs]
    out = call(module, *ins) if call else module(*ins)
    up = torch.randn_like(out)
    (out * up).sum().backward()
    entry = {"name": name, "state": state, "inputs": [t(x) for x in inputs], "output": t(out), "upstream": t(up),
             "input_grads": [t(x.grad) if x.grad is not None else None for x in ins],
             "param_grads": {k: t(p.grad) for k, p in module.named_parameters() if p.grad is not None},
             "state_after": {k: t(v) for k, v in module.state_dict().items()}, "train": train}
    if extra:
        entry.update(extra)
    layers.append(entry)


x4 = lambda *s: torch.randn(*s)
layer("Linear", nn.Linear(5, 3), [x4(4, 5)], extra={"args": {"in": 5, "out": 3}})
layer("Linear3d", nn.Linear(5, 3), [x4(2, 4, 5)], extra={"args": {"in": 5, "out": 3}})
layer("LinearNoBias", nn.Linear(5, 3, bias=False), [x4(4, 5)], extra={"args": {"in": 5, "out": 3, "bias": 0}})
layer("Bilinear", nn.Bilinear(3, 4, 2), [x4(5, 3), x4(5, 4)], extra={"args": {"in1": 3, "in2": 4, "out": 2}})
for cfg in [dict(k=3, s=1, p=1, d=1, g=1), dict(k=3, s=2, p=0, d=1, g=1), dict(k=3, s=1, p=2, d=2, g=1),
            dict(k=3, s=1, p=1, d=1, g=2), dict(k=2, s=1, p="same", d=1, g=1), dict(k=3, s=1, p="same", d=2, g=1)]:
    conv = nn.Conv2d(4, 6, cfg["k"], stride=cfg["s"], padding=cfg["p"], dilation=cfg["d"], groups=cfg["g"])
    layer(f"Conv2d_{cfg}", conv, [x4(2, 4, 7, 6)], extra={"args": {"in": 4, "out": 6, **{k: (v if v != "same" else -1) for k, v in cfg.items()}}})
layer("Conv1d", nn.Conv1d(3, 5, 3, stride=2, padding=1), [x4(2, 3, 9)], extra={"args": {"in": 3, "out": 5, "k": 3, "s": 2, "p": 1}})
for cfg in [dict(k=3, s=2, p=1, op=1, g=1), dict(k=2, s=1, p=0, op=0, g=2)]:
    ct = nn.ConvTranspose2d(4, 6, cfg["k"], stride=cfg["s"], padding=cfg["p"], output_padding=cfg["op"], groups=cfg["g"])
    layer(f"ConvTranspose2d_{cfg}", ct, [x4(2, 4, 5, 4)], extra={"args": {"in": 4, "out": 6, **cfg}})
layer("MaxPool2d", nn.MaxPool2d(2), [x4(2, 3, 6, 6)], extra={"args": {"k": 2}})
layer("MaxPool2d_s1p1", nn.MaxPool2d(3, stride=1, padding=1), [x4(2, 3, 5, 6)], extra={"args": {"k": 3, "s": 1, "p": 1}})
layer("AvgPool2d", nn.AvgPool2d(2), [x4(2, 3, 6, 6)], extra={"args": {"k": 2}})
layer("AvgPool2d_pad_excl", nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), [x4(2, 3, 7, 6)],
      extra={"args": {"k": 3, "s": 2, "p": 1, "cip": 0}})
layer("AdaptiveAvgPool2d_div", nn.AdaptiveAvgPool2d((2, 3)), [x4(2, 3, 6, 6)], extra={"args": {"h": 2, "w": 3}})
layer("AdaptiveAvgPool2d_odd", nn.AdaptiveAvgPool2d((3, 2)), [x4(2, 3, 7, 5)], extra={"args": {"h": 3, "w": 2}})
for train in [True, False]:
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1); bn.running_var.uniform_(0.5, 2); bn.weight.uniform_(0.5, 1.5); bn.bias.uniform_(-1, 1)
    layer(f"BatchNorm2d_{'train' if train else 'eval'}", bn, [x4(4, 3, 5, 5)], train=train, extra={"args": {"n": 3}})
    bn1 = nn.BatchNorm1d(5)
    with torch.no_grad():
        bn1.running_mean.uniform_(-1, 1); bn1.running_var.uniform_(0.5, 2)
    layer(f"BatchNorm1d_{'train' if train else 'eval'}", bn1, [x4(8, 5)], train=train, extra={"args": {"n": 5}})
layer("LayerNorm", nn.LayerNorm([4, 5]), [x4(3, 4, 5)], extra={"args": {"shape": [4, 5]}})
ln = nn.LayerNorm(6)
with torch.no_grad():
    ln.weight.uniform_(0.5, 1.5); ln.bias.uniform_(-1, 1)
layer("LayerNorm_affine", ln, [x4(2, 3, 6)], extra={"args": {"shape": [6]}})
gn = nn.GroupNorm(2, 6)
with torch.no_grad():
    gn.weight.uniform_(0.5, 1.5); gn.bias.uniform_(-1, 1)
layer("GroupNorm", gn, [x4(3, 6, 4, 2)], extra={"args": {"g": 2, "c": 6}})
layer("Embedding", nn.Embedding(7, 4, padding_idx=2), [torch.tensor([[1, 2, 6], [2, 0, 1]])], extra={"args": {"n": 7, "d": 4, "pad": 2}})
layer("Flatten", nn.Flatten(), [x4(2, 3, 4)])
for kind, cls in [("RNN", nn.RNN), ("LSTM", nn.LSTM), ("GRU", nn.GRU)]:
    for bf in [False, True]:
        m = cls(4, 5, num_layers=2, batch_first=bf)
        inp = x4(3, 6, 4) if bf else x4(6, 3, 4)
        layer(f"{kind}_bf{int(bf)}", m, [inp], call=lambda mod, x: mod(x)[0], extra={"args": {"in": 4, "h": 5, "layers": 2, "bf": int(bf)}})
    m = cls(3, 4, num_layers=1)
    h0 = x4(1, 2, 4)
    if kind == "LSTM":
        c0 = x4(1, 2, 4)
        layer(f"{kind}_state", m, [x4(5, 2, 3), h0, c0], call=lambda mod, x, h, c: torch.cat([mod(x, (h, c))[1][0], mod(x, (h, c))[1][1]], 0),
              extra={"args": {"in": 3, "h": 4, "layers": 1, "bf": 0}})
    else:
        layer(f"{kind}_state", m, [x4(5, 2, 3), h0], call=lambda mod, x, h: mod(x, h)[1], extra={"args": {"in": 3, "h": 4, "layers": 1, "bf": 0}})
mha = nn.MultiheadAttention(8, 2)
kpm = torch.tensor([[False, False, False, True], [False, True, False, False]])
layer("MultiheadAttention", mha, [x4(3, 2, 8), x4(4, 2, 8), x4(4, 2, 8)],
      call=lambda m, q, k, v: m(q, k, v, key_padding_mask=kpm)[0], extra={"args": {"e": 8, "h": 2}, "kpm": t(kpm)})
mha2 = nn.MultiheadAttention(6, 3, batch_first=True)
layer("MultiheadAttention_weights", mha2, [x4(2, 3, 6), x4(2, 3, 6), x4(2, 3, 6)],
      call=lambda m, q, k, v: m(q, k, v, need_weights=True, is_causal=False, attn_mask=torch.triu(torch.ones(3, 3, dtype=torch.bool), 1))[1],
      extra={"args": {"e": 6, "h": 3, "bf": 1}})

# A per-head bool mask (true = may not attend) with a key padding mask, drawn on its own
# seed so that the fixtures after it keep their values.
with torch.random.fork_rng():
    torch.manual_seed(1717)
    mha3 = nn.MultiheadAttention(8, 2)
    mask3 = torch.rand(4, 3, 4) < 0.4
    mask3[..., 0] = False
    layer("MultiheadAttention_mask3d", mha3, [x4(3, 2, 8), x4(4, 2, 8), x4(4, 2, 8)],
          call=lambda m, q, k, v: m(q, k, v, attn_mask=mask3, key_padding_mask=kpm, need_weights=False)[0],
          extra={"args": {"e": 8, "h": 2}, "kpm": t(kpm), "mask": t(mask3)})


class Fn(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, *x):
        return self.f(*x)


layer("SDPA_causal", Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)), [x4(2, 3, 4, 5), x4(2, 3, 4, 5), x4(2, 3, 4, 5)])
layer("SDPA_mask", Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor([[True, False, True], [True, True, False]]))),
      [x4(2, 2, 4), x4(2, 3, 4), x4(2, 3, 4)])

# Losses: (name, fn, inputs, args)
losses = []


def loss(name, fn, inputs, args=None):
    ins = [x.clone().requires_grad_(x.dtype.is_floating_point and i == 0) for i, x in enumerate(inputs)]
    out = fn(*ins)
    up = torch.randn_like(out)
    (out * up).sum().backward()
    losses.append({"name": name, "args": args or {}, "inputs": [t(x) for x in inputs], "output": t(out), "upstream": t(up),
                   "grad": t(ins[0].grad)})


logits, tgt = x4(6, 5), torch.tensor([1, 0, 4, 2, 2, 3])
tgt_ign = torch.tensor([1, -100, 4, 2, -100, 3])
w = torch.rand(5) + 0.5
probs = torch.softmax(x4(6, 5), 1)
for red in ["mean", "sum", "none"]:
    loss(f"ce_{red}", lambda x, y: F.cross_entropy(x, y, reduction=red), [logits, tgt], {"reduction": red})
    loss(f"ce_w_ign_{red}", lambda x, y, ww: F.cross_entropy(x, y, weight=ww, ignore_index=-100, reduction=red), [logits, tgt_ign, w], {"reduction": red})
    loss(f"ce_ls_{red}", lambda x, y: F.cross_entropy(x, y, label_smoothing=0.1, reduction=red), [logits, tgt_ign], {"reduction": red, "ls": 0.1})
    loss(f"ce_ls_w_{red}", lambda x, y, ww: F.cross_entropy(x, y, weight=ww, label_smoothing=0.2, reduction=red), [logits, tgt_ign, w],
         {"reduction": red, "ls": 0.2})
    loss(f"ce_probs_{red}", lambda x, y: F.cross_entropy(x, y, reduction=red), [logits, probs], {"reduction": red})
    loss(f"ce_probs_ls_w_{red}", lambda x, y, ww: F.cross_entropy(x, y, weight=ww, label_smoothing=0.1, reduction=red), [logits, probs, w],
         {"reduction": red, "ls": 0.1})
    loss(f"nll_{red}", lambda x, y, ww: F.nll_loss(x, y, weight=ww, reduction=red), [F.log_softmax(x4(6, 5), 1), tgt_ign, w], {"reduction": red})
    a, b = x4(4, 3), x4(4, 3)
    loss(f"mse_{red}", lambda x, y: F.mse_loss(x, y, reduction=red), [a, b], {"reduction": red})
    loss(f"l1_{red}", lambda x, y: F.l1_loss(x, y, reduction=red), [a, b], {"reduction": red})
    loss(f"smoothl1_{red}", lambda x, y: F.smooth_l1_loss(x, y, beta=0.5, reduction=red), [a, b], {"reduction": red, "beta": 0.5})
    loss(f"huber_{red}", lambda x, y: F.huber_loss(x, y, delta=0.7, reduction=red), [a, b], {"reduction": red, "delta": 0.7})
    p, y01 = torch.rand(4, 3) * 0.9 + 0.05, (torch.rand(4, 3) > 0.5).float()
    loss(f"bce_{red}", lambda x, y: F.binary_cross_entropy(x, y, reduction=red), [p, y01], {"reduction": red})
    loss(f"bce_w_{red}", lambda x, y, ww: F.binary_cross_entropy(x, y, weight=ww, reduction=red), [p, y01, torch.rand(3)], {"reduction": red})
    loss(f"bcel_{red}", lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=red), [a * 3, y01], {"reduction": red})
    loss(f"bcel_pw_{red}", lambda x, y, pw: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction=red), [a * 3, y01, torch.rand(3) + 0.5],
         {"reduction": red})
    lp, tp = F.log_softmax(x4(4, 5), 1), torch.softmax(x4(4, 5), 1)
    loss(f"kl_{red}", lambda x, y: F.kl_div(x, y, reduction=red), [lp, tp], {"reduction": red})
    loss(f"kl_log_{red}", lambda x, y: F.kl_div(x, y, reduction=red, log_target=True), [lp, tp.log()], {"reduction": red, "log": 1})
loss("kl_batchmean", lambda x, y: F.kl_div(x, y, reduction="batchmean"), [lp, tp], {"reduction": "batchMean"})
loss("ce_spatial", lambda x, y: F.cross_entropy(x, y), [x4(2, 4, 3, 3), torch.randint(0, 4, (2, 3, 3))], {"reduction": "mean"})

# Optimizers: two parameters, five steps of fixed gradients.
optims = []
p0 = [x4(3, 4), x4(4)]
grads = [[x4(3, 4), x4(4)] for _ in range(5)]
configs = [
    ("SGD", lambda ps: torch.optim.SGD(ps, lr=0.1)),
    ("SGD_momentum", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD_nesterov", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", lambda ps: torch.optim.Adam(ps, lr=0.01)),
    ("Adam_wd_amsgrad", lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    ("AdamW", lambda ps: torch.optim.AdamW(ps, lr=0.01)),
    ("AdamW_amsgrad", lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", lambda ps: torch.optim.RMSprop(ps, lr=0.01)),
    ("RMSprop_centered_momentum", lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True, weight_decay=0.1)),
    ("Adagrad", lambda ps: torch.optim.Adagrad(ps, lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
]
for name, make in configs:
    ps = [p.clone().requires_grad_(True) for p in p0]
    opt = make(ps)
    history = []
    for g in grads:
        for p, gg in zip(ps, g):
            p.grad = gg.clone()
        opt.step()
        history.append([t(p) for p in ps])
    optims.append({"name": name, "history": history})
param_groups = []
ps = [p.clone().requires_grad_(True) for p in p0]
opt = torch.optim.SGD([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.5, "momentum": 0.5}], lr=0.1)
for g in grads[:3]:
    for p, gg in zip(ps, g):
        p.grad = gg.clone()
    opt.step()
param_groups = [t(p) for p in ps]

# Schedulers: learning rate after each of 12 steps.
scheds = []
for name, make in [
    ("StepLR", lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
    ("MultiStepLR", lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5, 9], 0.3)),
    ("ExponentialLR", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.8)),
    ("CosineAnnealingLR", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.01)),
    ("LinearLR", lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.25, 1.0, 4)),
    ("LambdaLR", lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1 / (1 + e))),
    ("OneCycleLR", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=13)),
]:
    o = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    s = make(o)
    lrs, moms = [o.param_groups[0]["lr"]], [o.param_groups[0]["momentum"]]
    for _ in range(12):
        o.step()
        s.step()
        lrs.append(o.param_groups[0]["lr"])
        moms.append(o.param_groups[0]["momentum"])
    scheds.append({"name": name, "lrs": lrs, "momentum": moms})
o = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=2, factor=0.5, cooldown=1)
metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.8, 0.85, 0.9, 0.91, 0.92, 0.93, 0.7]
plr = []
for m in metrics:
    plateau.step(m)
    plr.append(o.param_groups[0]["lr"])

# Clipping.
clip_ps = [x4(3, 4).requires_grad_(True), x4(5).requires_grad_(True)]
for p in clip_ps:
    p.grad = x4(*p.shape) * 3
clip_in = [t(p.grad) for p in clip_ps]
total = torch.nn.utils.clip_grad_norm_(clip_ps, 1.5)
clip_norm = {"grads": clip_in, "after": [t(p.grad) for p in clip_ps], "total": float(total)}
for p, g in zip(clip_ps, clip_in):
    p.grad = torch.tensor(g["data"]).reshape(g["shape"])
torch.nn.utils.clip_grad_value_(clip_ps, 0.5)
clip_value = [t(p.grad) for p in clip_ps]

# Initialisation statistics (distribution checks): bounds and stds of PyTorch's defaults.
init = {"linear_bound": 1 / math.sqrt(784), "conv_bound": 1 / math.sqrt(1 * 9)}

with open(os.path.join(OUT, "nn.json.tmp"), "w") as f:
    json.dump({"torch": torch.__version__, "layers": layers, "losses": losses, "optimizers": optims, "param_groups": param_groups,
               "grads": [[t(g) for g in gs] for gs in grads], "p0": [t(p) for p in p0], "schedulers": scheds,
               "plateau": {"metrics": metrics, "lrs": plr}, "clip_norm": clip_norm, "clip_value": clip_value, "init": init},
              f, separators=(",", ":"))
os.replace(os.path.join(OUT, "nn.json.tmp"), os.path.join(OUT, "nn.json"))

# End-to-end: 10 steps of the MLP and CNN from the same initial weights and batches.
def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


train = {}
gen = torch.Generator().manual_seed(1)
xs = torch.randn(10, 16, 1, 28, 28, generator=gen)
ys = torch.randint(0, 10, (10, 16), generator=gen)
train["batches.x"], train["batches.y"] = xs, ys
for mname, make in [("mlp", mlp), ("cnn", cnn)]:
    torch.manual_seed(3)
    model0 = make()
    for k, v in model0.state_dict().items():
        train[f"{mname}.init.{k}"] = v.clone()
    for oname in ["sgd", "adam"]:
        model = make()
        model.load_state_dict(model0.state_dict())
        if oname == "sgd":
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            sched = torch.optim.lr_scheduler.StepLR(opt, 3, 0.5)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)
        losses_run = []
        sums = []
        for step in range(10):
            out = model(xs[step] if mname == "cnn" else xs[step].squeeze(1))
            l = F.cross_entropy(out, ys[step])
            opt.zero_grad()
            l.backward()
            opt.step()
            sched.step()
            losses_run.append(float(l))
            sums.append([float(p.detach().double().sum()) for p in model.parameters()])
            if step in (0, 9):
                for k, v in model.state_dict().items():
                    train[f"{mname}.{oname}.step{step + 1}.{k}"] = v.clone()
        train[f"{mname}.{oname}.losses"] = torch.tensor(losses_run, dtype=torch.float64)
        train[f"{mname}.{oname}.sums"] = torch.tensor(sums, dtype=torch.float64)
save_file({k: v.contiguous() for k, v in train.items()}, os.path.join(OUT, "training.safetensors"))

# A file written by the safetensors package (several dtypes, metadata) for the interop test.
sample = {"weight": torch.randn(3, 4), "bias": torch.arange(5, dtype=torch.float64), "ids": torch.arange(6, dtype=torch.int64).reshape(2, 3),
          "mask": torch.tensor([True, False, True]), "half": torch.randn(2, 2).half(), "bf": torch.randn(3).bfloat16(),
          "small": torch.tensor([1, 2, 3], dtype=torch.int32), "bytes": torch.tensor([0, 255, 7], dtype=torch.uint8),
          "layer.0.weight": torch.randn(2, 2)}
save_file(sample, os.path.join(OUT, "python.safetensors"), metadata={"format": "pt"})
assert load_file(os.path.join(OUT, "python.safetensors"))["weight"].equal(sample["weight"])
# A file Ember wrote (committed by the Swift test run with EMBER_WRITE_FIXTURES=1) must load here too.
ember_file = os.path.join(OUT, "ember_written.safetensors")
if os.path.exists(ember_file):
    loaded = load_file(ember_file)
    for k, v in sample.items():
        assert loaded[k].equal(v), k
    print("ember_written.safetensors reads back in Python: ok")
print(f"wrote {len(layers)} layers, {len(losses)} losses, {len(optims)} optimizers, {len(scheds)} schedulers")

# Gzip streams of each DEFLATE block kind (stored, fixed, dynamic) and a two-member file.
import gzip
import zlib
payload = (b"Ember reads gzip without zlib. " * 300) + bytes(range(256)) * 8
with open(os.path.join(OUT, "payload.bin"), "wb") as f:
    f.write(payload)
for level in [0, 1, 9]:
    with open(os.path.join(OUT, f"payload.l{level}.gz"), "wb") as f:
        f.write(gzip.compress(payload, compresslevel=level, mtime=0))
co = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_FIXED)
fixed = co.compress(payload) + co.flush()
header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
trailer = zlib.crc32(payload).to_bytes(4, "little") + (len(payload) & 0xffffffff).to_bytes(4, "little")
with open(os.path.join(OUT, "payload.fixed.gz"), "wb") as f:
    f.write(header + fixed + trailer)
with open(os.path.join(OUT, "payload.multi.gz"), "wb") as f:
    f.write(gzip.compress(payload[:1000], mtime=0) + gzip.compress(payload[1000:], mtime=0))
