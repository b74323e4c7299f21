#!/usr/bin/env python3
"""Ember's fixtures from PyTorch's own OpInfo test inputs.

    pip install torch expecttest safetensors && python3 Scripts/make_opinfo_fixtures.py

For every op of Scripts/opinfo_table.py and every OpInfo entry of that name (its variants
too), in float32 and float64 where PyTorch's CPU has them: each `sample_inputs(...)` sample,
called as PyTorch's test suite calls it (`op(sample.input, *sample.args, **sample.kwargs)`);
its outputs; and, where the op supports autograd, the gradient of every floating input under
a fixed upstream pattern (`pattern`, recomputed by the Swift side), and in float64 the second-order gradient where OpInfo says
the op supports gradgrad.

Written: Tests/EmberTestSupport/Fixtures/opinfo.json (the cases: op, arguments with tensors
as references) and opinfo.safetensors (every tensor, in its own dtype). Seeded per op, so an
op added to the table changes no other op's fixtures.
"""
import json
import math
import os
import subprocess
import sys
import zlib

import torch
from safetensors.torch import save_file
from torch.testing._internal.common_methods_invocations import op_db

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opinfo_table import TABLE  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "EmberTestSupport", "Fixtures")
NAME = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16",
        torch.int64: "int64", torch.int32: "int32", torch.uint8: "uint8", torch.bool: "bool"}
MAX_ELEMENTS = 40_000  # per sample (inputs, outputs, upstream gradients): keeps the fixtures small
DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64, "bool": torch.bool}


class Unsupported(Exception):
    pass


def main():
    only = set(sys.argv[1:])
    by_name = {}
    for o in op_db:
        by_name.setdefault(o.name, []).append(o)
    tensors = Packer()
    cases = []
    skipped = {}
    repeats = {}
    for name, (spelling, opts) in TABLE.items():
        if only and name not in only:
            continue
        if name not in by_name:
            raise SystemExit(f"{name}: not an OpInfo name")
        for info in by_name[name]:
            supported = info.supported_dtypes("cpu")
            for dn in opts.get("dtypes", ["float32", "float64"]):
                dt = DTYPES[dn]
                if dt not in supported:
                    continue
                full = name + (("." + info.variant_test_name) if info.variant_test_name else "")
                torch.manual_seed(zlib.crc32(f"{full}@{dn}".encode()))
                grad = info.supports_autograd and dt.is_floating_point
                seen = set()
                for k, s in enumerate(info.sample_inputs("cpu", dt, requires_grad=grad)):
                    if opts.get("dedupe"):
                        # The same call as an earlier sample (up to spelling 3 as (3, 3), on
                        # other random values): left out as a repeat, not a skip.
                        key = repr(canonical((s.input, s.args, s.kwargs)))
                        if key in seen:
                            repeats[name] = repeats.get(name, 0) + 1
                            continue
                        seen.add(key)
                    reason = opts.get("skip", lambda s: None)(s)
                    if reason is None:
                        try:
                            cases.append(record(f"{full}@{dn}#{k}", name, info, s, dt, grad, tensors, opts))
                            continue
                        except Unsupported as e:
                            reason = str(e)
                    skipped.setdefault(name, []).append(f"{full}@{dn}#{k}: {reason}")
    os.makedirs(OUT, exist_ok=True)
    tmp = os.path.join(OUT, "opinfo.safetensors.tmp")
    save_file(tensors.blobs(), tmp)
    os.replace(tmp, os.path.join(OUT, "opinfo.safetensors"))
    manifest = {"torch": torch.__version__, "cases": cases, "skipped": skipped, "repeats": repeats}
    tmp = os.path.join(OUT, "opinfo.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, separators=(",", ":"), allow_nan=False)
    os.replace(tmp, os.path.join(OUT, "opinfo.json"))
    size = os.path.getsize(os.path.join(OUT, "opinfo.safetensors")) + os.path.getsize(os.path.join(OUT, "opinfo.json"))
    print(f"wrote {len(cases)} cases of {len({c['op'] for c in cases})} ops ({size / 1e6:.1f} MB); "
          f"{sum(len(v) for v in skipped.values())} samples skipped, {sum(repeats.values())} repeats left out")
    subprocess.run([sys.executable, os.path.join(ROOT, "Scripts", "make_fixture_tests.py")], check=True)


def pattern(shape, dtype, salt):
    """The upstream gradients and second-order directions: a fixed pattern in [-1, 1) that
    the Swift side computes the same way (exact integer arithmetic, one rounded division),
    so the fixtures need not store them. `salt` is the number the case records."""
    i = torch.arange(math.prod(shape), dtype=torch.int64)
    v = ((i * 7919 + salt * 104729) % 2003).double() / 1001.5 - 1.0
    return v.to(dtype).reshape(shape)


class Packer:
    """Every tensor of the fixtures in one flat blob per dtype (a safetensors header entry per
    tensor would outweigh the small tensors themselves); a case refers to a tensor as
    [dtype, offset, shape]."""

    def __init__(self):
        self.parts = {}
        self.sizes = {}

    def put(self, t):
        name = NAME[t.dtype]
        self.parts.setdefault(name, []).append(t.contiguous().reshape(-1).clone())
        offset = self.sizes.get(name, 0)
        self.sizes[name] = offset + t.numel()
        return [name, offset, list(t.shape)]

    def blobs(self):
        return {name: torch.cat(parts) for name, parts in self.parts.items()}


def canonical(v):
    """A sample's call without its random values: tensors by shape and dtype, and a tuple of
    equal ints as the int (pooling's kernel_size=3 is kernel_size=(3, 3))."""
    if isinstance(v, torch.Tensor):
        return ("tensor", tuple(v.shape), str(v.dtype))
    if isinstance(v, dict):
        return tuple(sorted((k, canonical(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, int) and not isinstance(x, bool) for x in v) and len(set(v)) == 1:
            return v[0]
        return tuple(canonical(x) for x in v)
    return v


def record(case_name, op_name, info, s, dt, grad, tensors, opts):
    inputs = []  # tensors in the order they are met: (tensor, requires grad)
    upcast = opts.get("upcast") and dt == torch.float32
    if upcast:
        # PyTorch computing in float64 on the same float32 inputs, rounded to float32.
        def up(t):
            if isinstance(t, torch.Tensor) and t.dtype == torch.float32:
                return t.detach().double().requires_grad_(t.requires_grad)
            return t
        s = s.transform(up)

    def enc(v):
        if isinstance(v, torch.Tensor):
            if v.is_complex() or v.is_sparse or v.layout != torch.strided:
                raise Unsupported("complex or sparse tensor")
            inputs.append(v)
            return {"t": len(inputs) - 1}
        if isinstance(v, bool):
            return {"b": v}
        if isinstance(v, int):
            return {"i": v}
        if isinstance(v, float):
            return {"f": v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))}
        if isinstance(v, str):
            return {"s": v}
        if v is None:
            return None
        if isinstance(v, torch.dtype):
            if v not in NAME:
                raise Unsupported(f"dtype {v}")
            return {"d": NAME[v]}
        if isinstance(v, torch.memory_format):
            return {"m": str(v).replace("torch.", "")}  # layout only: the values do not change
        if isinstance(v, torch.device):
            return {"s": str(v)}
        if isinstance(v, (list, tuple, torch.Size)):
            return {"l": [enc(x) for x in v]}
        raise Unsupported(f"argument of type {type(v).__name__}")

    args = [enc(s.input)] + [enc(a) for a in s.args]
    kwargs = {k: enc(v) for k, v in s.kwargs.items()}
    out = info.op(s.input, *s.args, **s.kwargs)
    process = None
    if opts.get("process"):
        # Outputs unique only up to sign (singular vectors, eigenvectors) or not compared
        # whole: the sample's own output_process_fn_grad, applied on both sides by name.
        out = s.output_process_fn_grad(out)
        process = s.output_process_fn_grad.__name__
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    # Python numbers and bools (`equal`, `item`) as 0-dim tensors.
    outs = [torch.tensor(o) if isinstance(o, (bool, int, float)) else o for o in outs]
    if not all(isinstance(o, torch.Tensor) for o in outs):
        raise Unsupported("an output that is not a tensor")
    if any(o.dtype not in NAME for o in outs):
        raise Unsupported("an output dtype Ember lacks")
    key = f"c{zlib.crc32(case_name.encode()):08x}"
    stored = sum(t.numel() for t in inputs) + 2 * sum(o.numel() for o in outs)
    limit = opts.get("max_elements", MAX_ELEMENTS)
    if stored > limit:
        raise Unsupported(f"{stored} elements, more than the committed fixtures take ({limit})")

    def put(tag, t):
        t = t.detach()
        if upcast and t.dtype == torch.float64:
            t = t.float()
        if getattr(t, "_is_zerotensor", lambda: False)():
            t = torch.zeros(t.shape, dtype=t.dtype)
        return tensors.put(t)

    c = {"name": case_name, "op": op_name, "args": args, "kwargs": kwargs,
         "inputs": [put(f"in{i}", t) for i, t in enumerate(inputs)],
         "grad_inputs": [bool(t.requires_grad and t.is_leaf) for t in inputs],
         "outputs": [put(f"out{i}", o) for i, o in enumerate(outs)]}
    if info.variant_test_name:
        c["variant"] = info.variant_test_name
    if process:
        c["process"] = process
    leaves = [t for t in inputs if t.requires_grad and t.is_leaf]
    diff = [o for o in outs if o.requires_grad and o.dtype.is_floating_point]
    if grad and leaves and diff:
        ups = [pattern(o.shape, o.dtype, i + 1) if o.requires_grad and o.dtype.is_floating_point else None
               for i, o in enumerate(outs)]
        loss = sum((o * u).sum() for o, u in zip(outs, ups) if u is not None)
        second = dt == torch.float64 and info.supports_gradgrad and not upcast
        try:
            gs = torch.autograd.grad(loss, leaves, allow_unused=True, create_graph=second)
        except RuntimeError as e:
            # PyTorch defines no derivative here (linalg.qr with mode='complete' and m > n):
            # the forward is compared, the backward is not.
            c["backward_error"] = str(e).splitlines()[0]
            return c
        c["upstream"] = [i + 1 if u is not None else None for i, u in enumerate(ups)]
        c["grads"] = [put(f"g{i}", g if g is not None else torch.zeros_like(l)) for i, (g, l) in enumerate(zip(gs, leaves))]
        if second and any(g is not None and g.requires_grad for g in gs):
            vs = [pattern(l.shape, l.dtype, 100 + i) for i, l in enumerate(leaves)]
            s2 = sum((g * v).sum() for g, v in zip(gs, vs) if g is not None and g.requires_grad)
            ggs = torch.autograd.grad(s2, leaves, allow_unused=True)
            c["double_v"] = [100 + i for i in range(len(vs))]
            c["double_grads"] = [put(f"gg{i}", g if g is not None else torch.zeros_like(l))
                                 for i, (g, l) in enumerate(zip(ggs, leaves))]
    return c


if __name__ == "__main__":
    main()
