#!/usr/bin/env python3
"""How much of PyTorch's OpInfo database Ember covers.

    pip install torch expecttest && python3 Scripts/op_coverage.py [--readme]

Lists op_db's distinct names, reads the committed table (Scripts/opinfo_table.py: op_db name
to Ember spelling) and the committed fixtures (Tests/EmberTestSupport/Fixtures/opinfo.json),
and prints every name that is not covered, why, and a last line `covered N of M op_db names`.

Covered means: the name is in the table, every OpInfo entry of that name (its variants) has
fixture cases from its sample inputs in float32 and float64 (where PyTorch's CPU has them),
and no sample was left out. The tests run every case on the CPU (`swift test`, the
OpInfoTests class) and CI runs them again on the emulated GPU (`ember-gpu-check`), so a
covered name is one whose every sample passes on both. With --readme, also writes the
generated op table (op, CPU, CUDA, grad, dtypes) between the README's markers.
"""
import json
import os
import sys

from torch.testing._internal.common_methods_invocations import op_db

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opinfo_table import TABLE  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "EmberTestSupport", "Fixtures", "opinfo.json")
BEGIN, END = "<!-- op table: begin (Scripts/op_coverage.py --readme) -->", "<!-- op table: end -->"


def main():
    with open(FIX) as f:
        manifest = json.load(f)
    cases = manifest["cases"]
    skipped = manifest.get("skipped", {})
    by_name = {}
    for o in op_db:
        by_name.setdefault(o.name, []).append(o)
    names = sorted(by_name)
    covered, partial, missing = [], [], []
    info = {}
    for name in names:
        ops = [c for c in cases if c["op"] == name]
        if name not in TABLE:
            missing.append(name)
            continue
        variants = {c["name"].split("@")[0] for c in ops}
        dts = TABLE[name][1].get("dtypes", ["float32", "float64"])
        want = {name + (("." + o.variant_test_name) if o.variant_test_name else "") for o in by_name[name]
                if any(str(d).replace("torch.", "") in dts for d in o.supported_dtypes("cpu"))}
        reasons = []
        if not ops:
            reasons.append("no fixture cases")
        if want - variants:
            reasons.append("variants without cases: " + ", ".join(sorted(want - variants)))
        if name in skipped:
            reasons.append(f"{len(skipped[name])} samples left out (first: {skipped[name][0]})")
        dtypes = sorted({c["name"].split("@")[1].split("#")[0] for c in ops})
        grad = any("grads" in c for c in ops)
        gradgrad = any("double_grads" in c for c in ops)
        info[name] = (dtypes, grad, gradgrad)
        (partial if reasons else covered).append((name, reasons))
    for name, reasons in partial:
        print(f"partial  {name}: {'; '.join(reasons)}")
    for name in missing:
        print(f"missing  {name}")
    print(f"{len(partial)} partial, {len(missing)} missing")
    print(f"covered {len(covered)} of {len(names)} op_db names")
    if "--readme" in sys.argv:
        write_readme(covered, partial, info)


def write_readme(covered, partial, info):
    rows = ["| OpInfo name | Ember | CPU | CUDA | grad | dtypes (fixtures) |", "|---|---|---|---|---|---|"]
    status = {n: "yes" for n, _ in covered}
    status.update({n: "partial" for n, _ in partial})
    for name in sorted(status):
        dtypes, grad, gradgrad = info[name]
        g = "2nd order" if gradgrad else ("yes" if grad else "—")
        rows.append(f"| `{name}` | `{TABLE[name][0]}` | {status[name]} | {status[name]} | {g} | {', '.join(dtypes)} |")
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md has no {BEGIN} … {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    table = "\n".join(rows)
    with open(path, "w") as f:
        f.write(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    print(f"wrote the op table ({len(rows) - 2} rows) into README.md")


if __name__ == "__main__":
    main()
