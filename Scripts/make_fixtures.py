#!/usr/bin/env python3
"""Generates Ember's PyTorch reference fixtures (forward values, gradients, second-order
gradients) for every core op. Seeded and deterministic; the output is committed so that CI
needs neither Python nor torch.

    pip install torch && python3 Scripts/make_fixtures.py

Each case names an op, its inputs (base data + a recipe that builds the same view in Ember:
contiguous, transposed, strided slice, or broadcast), parameters, the outputs, the random
upstream gradient, and the gradient of every input leaf.
"""
import json
import math
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "EmberTestSupport", "Fixtures", "ops.json")
DT = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
      "int64": torch.int64, "int32": torch.int32, "uint8": torch.uint8, "bool": torch.bool}
NAME = {v: k for k, v in DT.items()}


def flat(t):
    t = t.detach()
    if getattr(t, "_is_zerotensor", lambda: False)():  # autograd's lazily-allocated zeros
        t = torch.zeros(t.shape, dtype=t.dtype)
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if t.dtype == torch.bool:
        return [bool(v) for v in t.reshape(-1).tolist()]
    return t.reshape(-1).tolist()


def make_base(shape, dtype, domain):
    if dtype in ("int64", "int32", "uint8"):
        lo = 1 if domain == "pos" else (0 if dtype == "uint8" else -5)
        return torch.randint(lo, 6, shape, dtype=DT[dtype])
    if dtype == "bool":
        return torch.rand(shape) > 0.5
    x = torch.randn(shape, dtype=torch.float64)
    if domain == "pos":
        x = x.abs() + 0.5
    elif domain == "unit":
        x = torch.rand(shape, dtype=torch.float64) * 1.8 - 0.9
    elif domain == "away0":
        x = torch.sign(x) * (x.abs() + 0.5)
        x[x == 0] = 1
    elif domain == "coarse":  # values repeat, so comparisons and ties happen
        x = torch.round(x * 2) / 2
    elif domain == "zero":  # exact zeros inside (prod's gradient)
        x = x.flatten()
        x[1] = 0
        x = x.reshape(shape)
    elif domain == "nan":  # ties and NaN (sorting)
        x = torch.round(x * 2) / 2
        x = x.flatten()
        x[::5] = float("nan")
        x = x.reshape(shape)
    elif domain == "wide":
        x = x * 3
    return x.to(DT[dtype])


def build(spec):
    """Input spec: (shape, dtype, recipe, domain). Returns (leaf, view, json)."""
    shape, dtype, recipe, domain = spec
    if recipe == "contig":
        base_shape = list(shape)
    elif recipe == "t":
        base_shape = list(shape[:-2]) + [shape[-1], shape[-2]]
    elif recipe == "slice":
        base_shape = list(shape[:-1]) + [shape[-1] * 2]
    elif recipe.startswith("expand:"):
        base_shape = json.loads(recipe[len("expand:"):])
    else:
        raise ValueError(recipe)
    base = make_base(base_shape, dtype, domain)
    floating = base.dtype.is_floating_point
    leaf = base.clone().requires_grad_(floating)
    if recipe == "contig":
        view = leaf
    elif recipe == "t":
        view = leaf.transpose(-1, -2)
    elif recipe == "slice":
        view = leaf[..., ::2]
    else:
        view = leaf.expand(*shape)
    return leaf, view, {"data": flat(base), "base_shape": base_shape, "shape": list(shape), "dtype": dtype,
                        "recipe": recipe}


OPS = {}


def op(name, fn, nondiff=False, double=False):
    OPS[name] = (fn, nondiff, double)


# Unary.
op("neg", lambda x, p: [-x[0]], double=True)
op("abs", lambda x, p: [x[0].abs()], double=True)
op("sign", lambda x, p: [x[0].sign()])
op("exp", lambda x, p: [x[0].exp()], double=True)
op("log", lambda x, p: [x[0].log()], double=True)
op("log1p", lambda x, p: [x[0].log1p()], double=True)
op("expm1", lambda x, p: [x[0].expm1()], double=True)
op("sqrt", lambda x, p: [x[0].sqrt()], double=True)
op("rsqrt", lambda x, p: [x[0].rsqrt()], double=True)
op("sin", lambda x, p: [x[0].sin()], double=True)
op("cos", lambda x, p: [x[0].cos()], double=True)
op("tanh", lambda x, p: [x[0].tanh()], double=True)
op("sigmoid", lambda x, p: [x[0].sigmoid()], double=True)
op("relu", lambda x, p: [x[0].relu()], double=True)
op("leakyRelu", lambda x, p: [F.leaky_relu(x[0], p["slope"])], double=True)
op("gelu", lambda x, p: [F.gelu(x[0])], double=True)
op("geluTanh", lambda x, p: [F.gelu(x[0], approximate="tanh")], double=True)
op("silu", lambda x, p: [F.silu(x[0])], double=True)
op("softplus", lambda x, p: [F.softplus(x[0], beta=p["beta"], threshold=p["threshold"])], double=True)
op("erf", lambda x, p: [x[0].erf()], double=True)
op("reciprocal", lambda x, p: [x[0].reciprocal()], double=True)
op("square", lambda x, p: [x[0].square()], double=True)
op("clamp", lambda x, p: [x[0].clamp(p.get("min"), p.get("max"))], double=True)
op("floor", lambda x, p: [x[0].floor()])
op("ceil", lambda x, p: [x[0].ceil()])
op("round", lambda x, p: [x[0].round()])
op("powScalar", lambda x, p: [x[0].pow(p["e"])], double=True)
# Binary.
op("add", lambda x, p: [x[0] + x[1]], double=True)
op("sub", lambda x, p: [x[0] - x[1]], double=True)
op("mul", lambda x, p: [x[0] * x[1]], double=True)
op("div", lambda x, p: [x[0] / x[1]], double=True)
op("pow", lambda x, p: [x[0].pow(x[1])], double=True)
op("maximum", lambda x, p: [torch.maximum(x[0], x[1])], double=True)
op("minimum", lambda x, p: [torch.minimum(x[0], x[1])], double=True)
op("addScalar", lambda x, p: [x[0] + p["s"]], double=True)
op("rsubScalar", lambda x, p: [p["s"] - x[0]], double=True)
op("mulScalar", lambda x, p: [x[0] * p["s"]], double=True)
op("divScalar", lambda x, p: [x[0] / p["s"]], double=True)
op("rdivScalar", lambda x, p: [p["s"] / x[0]], double=True)
op("addIntScalar", lambda x, p: [x[0] + 2])
op("mulIntScalar", lambda x, p: [x[0] * 3])
for c in ["eq", "ne", "lt", "le", "gt", "ge"]:
    op(c, (lambda c: lambda x, p: [getattr(x[0], c)(x[1])])(c), nondiff=True)
op("logicalAnd", lambda x, p: [x[0].logical_and(x[1])], nondiff=True)
op("logicalOr", lambda x, p: [x[0].logical_or(x[1])], nondiff=True)
op("logicalNot", lambda x, p: [x[0].logical_not()], nondiff=True)
op("where", lambda x, p: [torch.where(x[0], x[1], x[2])], double=True)
# Reductions.
op("sum", lambda x, p: [x[0].sum(p["dims"], keepdim=p["keepdim"]) if "dims" in p else x[0].sum()])
op("mean", lambda x, p: [x[0].mean(p["dims"], keepdim=p["keepdim"]) if "dims" in p else x[0].mean()])
op("prod", lambda x, p: [x[0].prod(p["dim"], keepdim=p["keepdim"]) if "dim" in p else x[0].prod()])
op("maxAll", lambda x, p: [x[0].max()])
op("minAll", lambda x, p: [x[0].min()])
op("maxDim", lambda x, p: list(x[0].max(p["dim"], keepdim=p["keepdim"])))
op("minDim", lambda x, p: list(x[0].min(p["dim"], keepdim=p["keepdim"])))
op("argmax", lambda x, p: [x[0].argmax(p.get("dim"), keepdim=p.get("keepdim", False))], nondiff=True)
op("argmin", lambda x, p: [x[0].argmin(p.get("dim"), keepdim=p.get("keepdim", False))], nondiff=True)
op("var", lambda x, p: [x[0].var(p.get("dims"), correction=p["correction"], keepdim=p["keepdim"])])
op("std", lambda x, p: [x[0].std(p.get("dims"), correction=p["correction"], keepdim=p["keepdim"])])
op("logsumexp", lambda x, p: [x[0].logsumexp(p["dims"], keepdim=p["keepdim"])])
op("norm", lambda x, p: [torch.linalg.vector_norm(x[0], ord=p["p"], dim=p.get("dims"), keepdim=p["keepdim"])])
op("softmax", lambda x, p: [x[0].softmax(p["dim"])])
op("logSoftmax", lambda x, p: [x[0].log_softmax(p["dim"])])
# Linear algebra.
op("matmul", lambda x, p: [x[0].matmul(x[1])], double=True)
op("mm", lambda x, p: [x[0].mm(x[1])], double=True)
op("bmm", lambda x, p: [x[0].bmm(x[1])], double=True)
op("linear", lambda x, p: [F.linear(x[0], x[1], x[2] if len(x) > 2 else None)], double=True)
# Indexing.
op("gather", lambda x, p: [x[0].gather(p["dim"], x[1])])
op("scatter", lambda x, p: [x[0].scatter(p["dim"], x[1], x[2])])
op("scatterValue", lambda x, p: [x[0].scatter(p["dim"], x[1], p["value"])])
op("scatterAdd", lambda x, p: [x[0].scatter_add(p["dim"], x[1], x[2])])
op("indexSelect", lambda x, p: [x[0].index_select(p["dim"], x[1])])
op("maskedFill", lambda x, p: [x[0].masked_fill(x[1], p["value"])])
op("maskedSelect", lambda x, p: [x[0].masked_select(x[1])])
op("oneHot", lambda x, p: [F.one_hot(x[0], p["n"])], nondiff=True)
op("embedding", lambda x, p: [F.embedding(x[0], x[1], padding_idx=p.get("pad"))])
# Views and joins.
op("reshape", lambda x, p: [x[0].reshape(p["shape"])])
op("permute", lambda x, p: [x[0].permute(p["dims"])])
op("transpose", lambda x, p: [x[0].transpose(p["d0"], p["d1"])])
op("t", lambda x, p: [x[0].t()])
op("squeeze", lambda x, p: [x[0].squeeze(p["dim"]) if "dim" in p else x[0].squeeze()])
op("unsqueeze", lambda x, p: [x[0].unsqueeze(p["dim"])])
op("expand", lambda x, p: [x[0].expand(p["shape"])])
op("flatten", lambda x, p: [x[0].flatten(p["start"], p["end"])])
op("narrow", lambda x, p: [x[0].narrow(p["dim"], p["start"], p["length"])])
op("select", lambda x, p: [x[0].select(p["dim"], p["index"])])
op("slice", lambda x, p: [x[0][:, p["start"]:p["end"]:p["step"]]])
op("cat", lambda x, p: [torch.cat(x, p["dim"])])
op("stack", lambda x, p: [torch.stack(x, p["dim"])])
op("split", lambda x, p: list(x[0].split(p["size"], p["dim"])))
op("chunk", lambda x, p: list(x[0].chunk(p["n"], p["dim"])))
op("contiguous", lambda x, p: [x[0].contiguous()])
op("toDType", lambda x, p: [x[0].to(DT[p["dtype"]])])
# Semantics the OpInfo samples leave out: ties, bounds, NaN, rounding of negative quotients.
op("sortStable", lambda x, p: list(torch.sort(x[0], dim=p["dim"], descending=p["descending"], stable=True)))
op("amax", lambda x, p: [x[0].amax(p["dims"], keepdim=p["keepdim"])])
op("amin", lambda x, p: [x[0].amin(p["dims"], keepdim=p["keepdim"])])
op("divMode", lambda x, p: [torch.div(x[0], x[1], rounding_mode=p["mode"])])
op("clampTensor", lambda x, p: [x[0].clamp(x[1], x[2])])
op("cummax", lambda x, p: list(torch.cummax(x[0], p["dim"])))

cases = []
specs = []  # every case's arguments, for the half-precision sweep


def case(name, opname, inputs, params=None, extra_inputs=None):
    """inputs: list of specs (shape, dtype, recipe, domain) or ("raw", tensor) for index tensors."""
    params = params or {}
    specs.append((name, opname, inputs, params))
    fn, nondiff, double = OPS[opname]
    leaves, views, js = [], [], []
    for spec in inputs:
        if spec[0] == "raw":
            t = spec[1]
            leaves.append(None)
            views.append(t)
            js.append({"data": flat(t), "base_shape": list(t.shape), "shape": list(t.shape), "dtype": NAME[t.dtype],
                       "recipe": "contig",
                       "raw": True})
        else:
            leaf, view, j = build(spec)
            leaves.append(leaf)
            views.append(view)
            js.append(j)
    outs = fn(views, params)
    c = {"name": name, "op": opname, "params": params, "inputs": js,
         "outputs": [{"data": flat(o), "shape": list(o.shape), "dtype": NAME[o.dtype]} for o in outs]}
    float_leaves = [l for l in leaves if l is not None and l.dtype.is_floating_point]
    diff_outs = [o for o in outs if o.dtype.is_floating_point and o.requires_grad]
    if not nondiff and float_leaves and diff_outs:
        ups = [torch.randn(o.shape, dtype=o.dtype) if o.dtype.is_floating_point and o.requires_grad else None for o in outs]
        loss = sum((o * u).sum() for o, u in zip(outs, ups) if u is not None)
        grads = torch.autograd.grad(loss, float_leaves, allow_unused=True, create_graph=double)
        c["upstream"] = [flat(u) if u is not None else None for u in ups]
        gi = iter(grads)
        gl = []
        for l in leaves:
            if l is not None and l.dtype.is_floating_point:
                g = next(gi)
                gl.append(flat(g) if g is not None else flat(torch.zeros_like(l)))
            else:
                gl.append(None)
        c["grads"] = gl
        if double:
            # Second order: d/dleaves of sum(grads * v).
            vs = [torch.randn(g.shape, dtype=g.dtype) if g is not None else None for g in grads]
            s = sum((g * v).sum() for g, v in zip(grads, vs) if g is not None and g.requires_grad)
            if isinstance(s, torch.Tensor) and s.requires_grad:
                gg = torch.autograd.grad(s, float_leaves, allow_unused=True)
                c["double_v"] = [flat(v) if v is not None else None for v in vs]
                c["double_grads"] = [flat(g) if g is not None else flat(torch.zeros_like(l))
                                     for g, l in zip(gg, float_leaves)]
    cases.append(c)


FLOATS = ["float32", "float64"]
S = [3, 4]
unary = {
    "neg": "any", "abs": "away0", "sign": "any", "exp": "any", "log": "pos", "log1p": "pos", "expm1": "any",
    "sqrt": "pos", "rsqrt": "pos", "sin": "any", "cos": "any", "tanh": "any", "sigmoid": "any", "relu": "away0",
    "gelu": "wide", "geluTanh": "wide", "silu": "wide", "erf": "any", "reciprocal": "away0", "square": "any",
    "floor": "wide", "ceil": "wide", "round": "wide",
}
for dt in FLOATS:
    for name, dom in unary.items():
        for recipe in ["contig", "t", "slice"]:
            case(f"{name}_{dt}_{recipe}", name, [(S, dt, recipe, dom)])
    for recipe in ["contig", "t"]:
        case(f"leakyRelu_{dt}_{recipe}", "leakyRelu", [(S, dt, recipe, "away0")], {"slope": 0.1})
        case(f"softplus_{dt}_{recipe}", "softplus", [(S, dt, recipe, "wide")], {"beta": 1.0, "threshold": 20.0})
        case(f"softplus_b2_{dt}_{recipe}", "softplus", [(S, dt, recipe, "wide")], {"beta": 2.0, "threshold": 3.0})
        case(f"clamp_{dt}_{recipe}", "clamp", [(S, dt, recipe, "away0")], {"min": -0.9, "max": 0.8})
        case(f"clampMin_{dt}_{recipe}", "clamp", [(S, dt, recipe, "away0")], {"min": 0.7})
        case(f"clampMax_{dt}_{recipe}", "clamp", [(S, dt, recipe, "away0")], {"max": -0.7})
        for e in [2.0, 3.0, 0.5, -1.5, 2.5]:
            case(f"powScalar{e}_{dt}_{recipe}", "powScalar", [(S, dt, recipe, "pos")], {"e": e})
    # Binary with every layout mix and broadcasting.
    bdom = {"add": ("any", "any"), "sub": ("any", "any"), "mul": ("any", "any"), "div": ("any", "away0"),
            "pow": ("pos", "any"), "maximum": ("coarse", "coarse"), "minimum": ("coarse", "coarse")}
    for name, (da, db) in bdom.items():
        case(f"{name}_{dt}_contig", name, [(S, dt, "contig", da), (S, dt, "contig", db)])
        case(f"{name}_{dt}_t_slice", name, [(S, dt, "t", da), (S, dt, "slice", db)])
        case(f"{name}_{dt}_bcast_row", name, [(S, dt, "contig", da), ([4], dt, "contig", db)])
        case(f"{name}_{dt}_bcast_both", name, [([3, 1], dt, "contig", da), ([1, 4], dt, "contig", db)])
        case(f"{name}_{dt}_bcast_3d", name, [([2, 3, 4], dt, "contig", da), ([3, 1], dt, "t", db)])
        case(f"{name}_{dt}_expand", name, [(S, dt, "expand:[3, 1]", da), (S, dt, "contig", db)])
    for name, s in [("addScalar", 2.5), ("rsubScalar", 2.0), ("mulScalar", -1.5), ("divScalar", 4.0), ("rdivScalar", 2.0)]:
        case(f"{name}_{dt}", name, [(S, dt, "t", "away0")], {"s": s})
    for c in ["eq", "ne", "lt", "le", "gt", "ge"]:
        case(f"{c}_{dt}", c, [(S, dt, "contig", "coarse"), ([4], dt, "contig", "coarse")])
    case(f"where_{dt}", "where", [(S, "bool", "contig", "any"), (S, dt, "contig", "any"), ([4], dt, "contig", "any")])
    case(f"where_t_{dt}", "where", [([4], "bool", "contig", "any"), (S, dt, "t", "any"), ([3, 1], dt, "contig", "any")])
    # Reductions.
    R = [2, 3, 4]
    for recipe in ["contig", "t"]:
        case(f"sum_all_{dt}_{recipe}", "sum", [(R, dt, recipe, "any")])
        case(f"sum_d1_{dt}_{recipe}", "sum", [(R, dt, recipe, "any")], {"dims": [1], "keepdim": False})
        case(f"sum_d02k_{dt}_{recipe}", "sum", [(R, dt, recipe, "any")], {"dims": [0, 2], "keepdim": True})
        case(f"sum_dneg_{dt}_{recipe}", "sum", [(R, dt, recipe, "any")], {"dims": [-1], "keepdim": False})
        case(f"mean_all_{dt}_{recipe}", "mean", [(R, dt, recipe, "any")])
        case(f"mean_d2k_{dt}_{recipe}", "mean", [(R, dt, recipe, "any")], {"dims": [2], "keepdim": True})
        case(f"prod_all_{dt}_{recipe}", "prod", [(R, dt, recipe, "away0")])
        case(f"prod_d1_{dt}_{recipe}", "prod", [(R, dt, recipe, "away0")], {"dim": 1, "keepdim": False})
        case(f"maxAll_{dt}_{recipe}", "maxAll", [(R, dt, recipe, "any")])
        case(f"minAll_{dt}_{recipe}", "minAll", [(R, dt, recipe, "any")])
        case(f"maxAll_ties_{dt}_{recipe}", "maxAll", [(R, dt, recipe, "coarse")])
        case(f"maxDim_{dt}_{recipe}", "maxDim", [(R, dt, recipe, "any")], {"dim": 1, "keepdim": False})
        case(f"maxDimK_{dt}_{recipe}", "maxDim", [(R, dt, recipe, "any")], {"dim": -1, "keepdim": True})
        case(f"minDim_{dt}_{recipe}", "minDim", [(R, dt, recipe, "any")], {"dim": 0, "keepdim": False})
        case(f"argmax_all_{dt}_{recipe}", "argmax", [(R, dt, recipe, "any")])
        case(f"argmax_d1_{dt}_{recipe}", "argmax", [(R, dt, recipe, "any")], {"dim": 1})
        case(f"argmin_d2k_{dt}_{recipe}", "argmin", [(R, dt, recipe, "any")], {"dim": 2, "keepdim": True})
        case(f"var_d1_{dt}_{recipe}", "var", [(R, dt, recipe, "any")], {"dims": [1], "correction": 1, "keepdim": False})
        case(f"var_all0_{dt}_{recipe}", "var", [(R, dt, recipe, "any")], {"correction": 0, "keepdim": False})
        case(f"std_d02_{dt}_{recipe}", "std", [(R, dt, recipe, "any")], {"dims": [0, 2], "correction": 1, "keepdim": True})
        case(f"logsumexp_{dt}_{recipe}", "logsumexp", [(R, dt, recipe, "wide")], {"dims": [2], "keepdim": False})
        case(f"logsumexp2_{dt}_{recipe}", "logsumexp", [(R, dt, recipe, "wide")], {"dims": [0, 1], "keepdim": True})
        case(f"norm2_{dt}_{recipe}", "norm", [(R, dt, recipe, "any")], {"p": 2.0, "keepdim": False})
        case(f"norm2_d1_{dt}_{recipe}", "norm", [(R, dt, recipe, "any")], {"p": 2.0, "dims": [1], "keepdim": True})
        case(f"norm1_{dt}_{recipe}", "norm", [(R, dt, recipe, "away0")], {"p": 1.0, "dims": [2], "keepdim": False})
        case(f"normInf_{dt}_{recipe}", "norm", [(R, dt, recipe, "any")], {"p": float("inf"), "dims": [2], "keepdim": False})
        case(f"norm3_{dt}_{recipe}", "norm", [(R, dt, recipe, "away0")], {"p": 3.0, "dims": [1], "keepdim": False})
        case(f"softmax_{dt}_{recipe}", "softmax", [(R, dt, recipe, "wide")], {"dim": -1})
        case(f"softmax0_{dt}_{recipe}", "softmax", [(R, dt, recipe, "wide")], {"dim": 0})
        case(f"logSoftmax_{dt}_{recipe}", "logSoftmax", [(R, dt, recipe, "wide")], {"dim": 1})
    case(f"prod_zero_{dt}", "prod", [([2, 3], dt, "contig", "zero")], {"dim": 1, "keepdim": False})
    case(f"prod_zero_all_{dt}", "prod", [([2, 3], dt, "contig", "zero")])
    # Linear algebra.
    case(f"matmul_1d1d_{dt}", "matmul", [([5], dt, "contig", "any"), ([5], dt, "contig", "any")])
    case(f"matmul_2d1d_{dt}", "matmul", [([3, 5], dt, "t", "any"), ([5], dt, "contig", "any")])
    case(f"matmul_1d2d_{dt}", "matmul", [([5], dt, "contig", "any"), ([5, 4], dt, "contig", "any")])
    case(f"matmul_1d3d_{dt}", "matmul", [([5], dt, "contig", "any"), ([2, 5, 4], dt, "contig", "any")])
    case(f"matmul_2d2d_{dt}", "matmul", [([7, 5], dt, "contig", "any"), ([5, 9], dt, "contig", "any")])
    case(f"matmul_2d2d_tt_{dt}", "matmul", [([7, 5], dt, "t", "any"), ([5, 9], dt, "t", "any")])
    case(f"matmul_2d2d_slice_{dt}", "matmul", [([7, 5], dt, "slice", "any"), ([5, 9], dt, "slice", "any")])
    case(f"matmul_3d3d_{dt}", "matmul", [([2, 3, 5], dt, "contig", "any"), ([2, 5, 4], dt, "t", "any")])
    case(f"matmul_3d2d_{dt}", "matmul", [([2, 3, 5], dt, "contig", "any"), ([5, 4], dt, "contig", "any")])
    case(f"matmul_2d3d_{dt}", "matmul", [([3, 5], dt, "contig", "any"), ([2, 5, 4], dt, "contig", "any")])
    case(f"matmul_4d3d_{dt}", "matmul", [([2, 1, 3, 5], dt, "contig", "any"), ([3, 5, 2], dt, "contig", "any")])
    case(f"matmul_big_{dt}", "matmul", [([37, 70], dt, "contig", "any"), ([70, 45], dt, "t", "any")])
    case(f"mm_{dt}", "mm", [([4, 6], dt, "contig", "any"), ([6, 3], dt, "t", "any")])
    case(f"bmm_{dt}", "bmm", [([3, 4, 6], dt, "contig", "any"), ([3, 6, 5], dt, "contig", "any")])
    case(f"linear_{dt}", "linear", [([4, 6], dt, "contig", "any"), ([3, 6], dt, "contig", "any"), ([3], dt, "contig", "any")])
    case(f"linear3d_{dt}", "linear", [([2, 4, 6], dt, "contig", "any"), ([3, 6], dt, "contig", "any"), ([3], dt, "contig", "any")])
    case(f"linear_nobias_{dt}", "linear", [([4, 6], dt, "t", "any"), ([3, 6], dt, "contig", "any")])
    # Indexing.
    idx = torch.tensor([[0, 2, 1, 0], [1, 1, 0, 2]])
    case(f"gather_{dt}", "gather", [([2, 4], dt, "contig", "any"), ("raw", torch.tensor([[0, 1, 1], [1, 0, 0]]))], {"dim": 0})
    case(f"gather_d1_{dt}", "gather", [([3, 4], dt, "t", "any"), ("raw", torch.tensor([[3, 0], [1, 1], [2, 2]]))], {"dim": 1})
    case(f"scatter_{dt}", "scatter", [([3, 4], dt, "contig", "any"), ("raw", torch.tensor([[0, 2, 1, 0], [1, 0, 2, 2]])),
                                      ([2, 4], dt, "contig", "any")], {"dim": 0})
    case(f"scatterValue_{dt}", "scatterValue", [([3, 4], dt, "contig", "any"), ("raw", torch.tensor([[3], [0], [1]]))],
         {"dim": 1, "value": -2.5})
    case(f"scatterAdd_{dt}", "scatterAdd", [([3, 4], dt, "contig", "any"), ("raw", idx), ([2, 4], dt, "contig", "any")], {"dim": 0})
    case(f"scatterAdd_d1_{dt}", "scatterAdd", [([2, 3], dt, "contig", "any"), ("raw", torch.tensor([[0, 0, 2, 1], [2, 2, 2, 0]])),
                                              ([2, 4], dt, "t", "any")], {"dim": 1})
    case(f"indexSelect_{dt}", "indexSelect", [([4, 3], dt, "contig", "any"), ("raw", torch.tensor([3, 0, 3, 1]))], {"dim": 0})
    case(f"indexSelect_d1_{dt}", "indexSelect", [([3, 4], dt, "t", "any"), ("raw", torch.tensor([2, 2, 0]))], {"dim": 1})
    case(f"maskedFill_{dt}", "maskedFill", [(S, dt, "contig", "any"), ([4], "bool", "contig", "any")], {"value": -1.25})
    case(f"maskedSelect_{dt}", "maskedSelect", [(S, dt, "t", "any"), (S, "bool", "contig", "any")])
    case(f"maskedSelect_bcast_{dt}", "maskedSelect", [([4], dt, "contig", "any"), (S, "bool", "contig", "any")])
    case(f"embedding_{dt}", "embedding", [("raw", torch.tensor([[1, 3], [0, 1]])), ([5, 3], dt, "contig", "any")])
    case(f"embedding_pad_{dt}", "embedding", [("raw", torch.tensor([1, 0, 4, 0])), ([5, 3], dt, "contig", "any")], {"pad": 0})
    # Views and joins.
    V = [2, 3, 4]
    for recipe in ["contig", "t"]:
        case(f"reshape_{dt}_{recipe}", "reshape", [(V, dt, recipe, "any")], {"shape": [4, -1]})
        case(f"permute_{dt}_{recipe}", "permute", [(V, dt, recipe, "any")], {"dims": [2, 0, 1]})
        case(f"transpose_{dt}_{recipe}", "transpose", [(V, dt, recipe, "any")], {"d0": 0, "d1": 2})
        case(f"flatten_{dt}_{recipe}", "flatten", [(V, dt, recipe, "any")], {"start": 1, "end": -1})
        case(f"narrow_{dt}_{recipe}", "narrow", [(V, dt, recipe, "any")], {"dim": 2, "start": 1, "length": 2})
        case(f"select_{dt}_{recipe}", "select", [(V, dt, recipe, "any")], {"dim": 1, "index": -1})
        case(f"slice_{dt}_{recipe}", "slice", [(V, dt, recipe, "any")], {"start": 0, "end": 3, "step": 2})
        case(f"split_{dt}_{recipe}", "split", [(V, dt, recipe, "any")], {"size": 3, "dim": -1})
        case(f"chunk_{dt}_{recipe}", "chunk", [(V, dt, recipe, "any")], {"n": 2, "dim": 1})
        case(f"contiguous_{dt}_{recipe}", "contiguous", [(V, dt, recipe, "any")])
        case(f"cat_{dt}_{recipe}", "cat", [(V, dt, recipe, "any"), ([2, 1, 4], dt, "contig", "any")], {"dim": 1})
        case(f"stack_{dt}_{recipe}", "stack", [(V, dt, recipe, "any"), (V, dt, "contig", "any")], {"dim": 1})
    case(f"t_{dt}", "t", [([3, 5], dt, "contig", "any")])
    case(f"squeeze_{dt}", "squeeze", [([3, 1, 4, 1], dt, "contig", "any")])
    case(f"squeeze_d_{dt}", "squeeze", [([3, 1, 4, 1], dt, "contig", "any")], {"dim": 1})
    case(f"unsqueeze_{dt}", "unsqueeze", [([3, 4], dt, "t", "any")], {"dim": -1})
    case(f"expand_{dt}", "expand", [([3, 1], dt, "contig", "any")], {"shape": [2, 3, 4]})
    case(f"toDType_{dt}", "toDType", [(S, dt, "t", "any")], {"dtype": "float64" if dt == "float32" else "float32"})

# Integer and bool cases (forward only; no gradients exist).
for dt in ["int64", "int32", "uint8"]:
    case(f"add_{dt}", "add", [(S, dt, "contig", "any"), ([4], dt, "contig", "any")])
    case(f"mul_{dt}", "mul", [(S, dt, "t", "any"), (S, dt, "contig", "any")])
    case(f"sub_{dt}", "sub", [(S, dt, "contig", "any"), (S, dt, "contig", "any")])
    case(f"div_{dt}", "div", [(S, dt, "contig", "any"), (S, dt, "contig", "pos")])
    case(f"maximum_{dt}", "maximum", [(S, dt, "contig", "any"), (S, dt, "slice", "any")])
    case(f"sum_{dt}", "sum", [([2, 3, 4], dt, "contig", "any")], {"dims": [1], "keepdim": False})
    case(f"sumAll_{dt}", "sum", [([2, 3, 4], dt, "t", "any")])
    case(f"prod_{dt}", "prod", [([2, 3], dt, "contig", "any")], {"dim": 1, "keepdim": False})
    case(f"maxDim_{dt}", "maxDim", [([2, 3, 4], dt, "contig", "any")], {"dim": 2, "keepdim": False})
    case(f"argmin_{dt}", "argmin", [([2, 3, 4], dt, "contig", "any")], {"dim": 1})
    case(f"abs_{dt}", "abs", [(S, dt, "contig", "any")])
    case(f"neg_{dt}", "neg", [(S, dt, "contig", "any")] if dt != "uint8" else [(S, "int32", "contig", "any")])
    case(f"relu_{dt}", "relu", [(S, dt, "contig", "any")])
    case(f"clamp_{dt}", "clamp", [(S, dt, "contig", "any")], {"min": -2, "max": 3})
    case(f"exp_{dt}", "exp", [(S, dt, "contig", "any")])
    case(f"sqrt_{dt}", "sqrt", [(S, dt, "contig", "any")] if dt == "uint8" else [(S, "uint8", "contig", "any")])
    case(f"addIntScalar_{dt}", "addIntScalar", [(S, dt, "contig", "any")])
    case(f"mulIntScalar_{dt}", "mulIntScalar", [(S, dt, "contig", "any")])
    case(f"mulScalar_{dt}", "mulScalar", [(S, dt, "contig", "any")], {"s": 1.5})
    case(f"lt_{dt}", "lt", [(S, dt, "contig", "any"), ([4], dt, "contig", "any")])
    case(f"eq_{dt}", "eq", [(S, dt, "contig", "any"), (S, dt, "t", "any")])
    case(f"matmul_{dt}", "matmul", [([3, 4], dt, "contig", "any"), ([4, 2], dt, "contig", "any")] if dt != "uint8" else
         [([3, 4], "int64", "contig", "any"), ([4, 2], "int64", "t", "any")])
    case(f"powScalar_{dt}", "powScalar", [(S, dt, "contig", "any")], {"e": 2.0})
    case(f"toDType_{dt}", "toDType", [(S, dt, "contig", "any")], {"dtype": "float32"})
    case(f"cat_{dt}", "cat", [(S, dt, "contig", "any"), (S, dt, "contig", "any")], {"dim": 0})
for c in ["logicalAnd", "logicalOr"]:
    case(f"{c}_bool", c, [(S, "bool", "contig", "any"), ([4], "bool", "contig", "any")])
case("logicalNot_bool", "logicalNot", [(S, "bool", "t", "any")])
case("logicalNot_float", "logicalNot", [(S, "float32", "contig", "coarse")])
case("sum_bool", "sum", [(S, "bool", "contig", "any")])
case("add_bool", "add", [(S, "bool", "contig", "any"), (S, "bool", "contig", "any")])
case("mul_bool", "mul", [(S, "bool", "contig", "any"), (S, "bool", "contig", "any")])
case("mulIntScalar_float32", "mulIntScalar", [(S, "float32", "t", "any")])
case("mulIntScalar_float64", "mulIntScalar", [(S, "float64", "contig", "any")])
case("oneHot", "oneHot", [("raw", torch.tensor([[0, 3], [2, 1]]))], {"n": 5})
case("add_int64_float32", "add", [(S, "int64", "contig", "any"), (S, "float32", "contig", "any")])
case("mul_int32_float64", "mul", [(S, "int32", "contig", "any"), (S, "float64", "contig", "any")])
case("add_bool_int32", "add", [(S, "bool", "contig", "any"), (S, "int32", "contig", "any")])
case("add_uint8_int32", "add", [(S, "uint8", "contig", "any"), (S, "int32", "contig", "any")])
case("toDType_f32_i64", "toDType", [(S, "float32", "contig", "wide")], {"dtype": "int64"})
case("toDType_f32_bool", "toDType", [(S, "float32", "contig", "coarse")], {"dtype": "bool"})
case("toDType_bool_f32", "toDType", [(S, "bool", "contig", "any")], {"dtype": "float32"})

# Half precision: storage + conversion; compute upcasts to float32 and rounds back.
for dt in ["float16", "bfloat16"]:
    case(f"exp_{dt}", "exp", [(S, dt, "contig", "any")])
    case(f"add_{dt}", "add", [(S, dt, "contig", "any"), (S, dt, "t", "any")])
    case(f"mul_{dt}", "mul", [(S, dt, "contig", "any"), ([4], dt, "contig", "any")])
    case(f"sum_{dt}", "sum", [(S, dt, "contig", "any")], {"dims": [1], "keepdim": False})
    case(f"matmul_{dt}", "matmul", [([3, 4], dt, "contig", "any"), ([4, 2], dt, "contig", "any")])
    case(f"toDType_{dt}_f32", "toDType", [(S, dt, "contig", "wide")], {"dtype": "float32"})
    case(f"toDType_f32_{dt}", "toDType", [(S, "float32", "contig", "wide")], {"dtype": dt})
    case(f"add_{dt}_float32", "add", [(S, dt, "contig", "any"), (S, "float32", "contig", "any")])
case("add_float16_bfloat16", "add", [(S, "float16", "contig", "any"), (S, "bfloat16", "contig", "any")])

# Semantics PyTorch's OpInfo samples do not reach (random inputs have no ties or bound hits).
for dt in FLOATS:
    case(f"clamp_inverted_{dt}", "clamp", [(S, dt, "contig", "any")], {"min": 0.7, "max": -0.7})  # max everywhere
    case(f"clamp_on_bounds_{dt}", "clamp", [(S, dt, "contig", "coarse")], {"min": -0.5, "max": 0.5})  # gradient 0 on a bound
    case(f"clampTensor_ties_{dt}", "clampTensor", [(S, dt, "contig", "coarse"), (S, dt, "contig", "coarse"), (S, dt, "contig", "coarse")])
    for recipe in ["contig", "t"]:
        case(f"sortStable_ties_{dt}_{recipe}", "sortStable", [([3, 6], dt, recipe, "nan")], {"dim": -1, "descending": False})
        case(f"sortStable_desc_{dt}_{recipe}", "sortStable", [([6, 3], dt, recipe, "nan")], {"dim": 0, "descending": True})
        case(f"amax_ties_{dt}_{recipe}", "amax", [([2, 3, 4], dt, recipe, "coarse")], {"dims": [1], "keepdim": False})
        case(f"amin_ties_{dt}_{recipe}", "amin", [([2, 3, 4], dt, recipe, "coarse")], {"dims": [0, 2], "keepdim": True})
        case(f"cummax_ties_{dt}_{recipe}", "cummax", [([3, 6], dt, recipe, "coarse")], {"dim": 1})
    for mode in ["floor", "trunc"]:
        case(f"divMode_{mode}_{dt}", "divMode", [(S, dt, "contig", "wide"), (S, dt, "t", "away0")], {"mode": mode})
for dt in ["int64", "int32"]:
    for mode in ["floor", "trunc"]:
        case(f"divMode_{mode}_{dt}", "divMode", [(S, dt, "contig", "any"),
                                                 ("raw", torch.tensor([[-3, -2, 2, 3]] * 3, dtype=DT[dt]))], {"mode": mode})

# Every float32 case again in float16 and bfloat16 (PyTorch's CPU half kernels are the
# reference; each variant has its own seed so that adding cases above changes none of these).
import zlib
for name, opname, inputs, params in list(specs):
    dts = {sp[1] for sp in inputs if sp[0] != "raw"}
    if "float32" not in dts or "float64" in dts or opname == "toDType":
        continue
    for dt in ["float16", "bfloat16"]:
        torch.manual_seed(zlib.crc32(f"{name}@{dt}".encode()))
        half = [(sp[0], dt, sp[2], sp[3]) if sp[0] != "raw" and sp[1] == "float32" else sp for sp in inputs]
        try:
            case(f"{name}@{dt}", opname, half, params)
        except (RuntimeError, NotImplementedError) as e:
            print(f"PyTorch has no CPU {dt} {opname}: {str(e).splitlines()[0][:100]}", file=sys.stderr)

# Type promotion: result dtypes of tensor ⊕ tensor, tensor ⊕ 0-dim tensor, tensor ⊕ Swift scalar.
promo = []
names = list(DT.keys())
for a in names:
    for b in names:
        ta, tb = torch.ones(2, dtype=DT[a]), torch.ones(2, dtype=DT[b])
        promo.append({"a": a, "b": b, "kind": "tensor", "result": NAME[torch.result_type(ta, tb)]})
        promo.append({"a": a, "b": b, "kind": "zerodim",
                      "result": NAME[torch.result_type(ta, torch.ones((), dtype=DT[b]))]})
    for kind, scalar in [("int", 2), ("float", 2.5), ("bool", True)]:
        promo.append({"a": a, "b": kind, "kind": "scalar", "result": NAME[torch.result_type(torch.ones(2, dtype=DT[a]), scalar)]})

creation = {
    "arange_5": flat(torch.arange(5)), "arange_1_4_05": flat(torch.arange(1, 4, 0.5)),
    "arange_neg": flat(torch.arange(5, -3, -2)),
    "linspace_0_1_5": flat(torch.linspace(0, 1, 5)), "linspace_m3_7_11": flat(torch.linspace(-3, 7, 11)),
    "linspace_1": flat(torch.linspace(2, 5, 1)),
    "eye_3": flat(torch.eye(3)), "eye_2_4": flat(torch.eye(2, 4)),
}
# Half conversions of awkward values (subnormals, rounding ties, overflow).
special = [0.0, -0.0, 1.0, 65504.0, 65520.0, 1e-8, 6e-8, 3e-5, 1.0009765625, 1.00048828125, 1.00146484375, 70000.0,
           -2.5, 0.1, 3.14159, 1e38, 1.00390625, 1.005859375]
halfs = {"values": special,
         "float16": flat(torch.tensor(special, dtype=torch.float32).to(torch.float16)),
         "bfloat16": flat(torch.tensor(special, dtype=torch.float32).to(torch.bfloat16))}

def sanitize(v):
    """JSON has no inf/nan: write them as the strings "inf", "-inf", "nan"."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, list):
        return [sanitize(x) for x in v]
    if isinstance(v, dict):
        return {k: sanitize(x) for k, x in v.items()}
    return v


os.makedirs(os.path.dirname(OUT), exist_ok=True)
tmp = OUT + ".tmp"
with open(tmp, "w") as f:
    json.dump(sanitize({"torch": torch.__version__, "cases": cases, "promotion": promo, "creation": creation,
                        "halfs": halfs}), f, separators=(",", ":"), allow_nan=False)
os.replace(tmp, OUT)
print(f"wrote {len(cases)} op cases, {len(promo)} promotion cases to {os.path.relpath(OUT)}")
# One XCTest method per op (Tests/EmberCoreTests/OpFixtureTests+Ops.swift).
subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "make_fixture_tests.py")], check=True)
