#!/usr/bin/env python3
"""The README's accuracy-on-real-data tables: likely's fits (default flags, and the reference's
--prior, --cov or --fix where it has one) on the fixtures of tests/fixtures/real against the
references there (linear models, then family fits), and NIST StRD's certified values, on
each engine. Needs only the standard library and a built binary:

    python3 bench/accuracy_table.py target/release/likely [cpu gpu]
"""
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def run(binary, args):
    out = subprocess.run([binary] + args, capture_output=True, text=True)
    return json.loads(out.stdout), out.returncode


def flat(coefs, family):
    if family == "categorical":
        return {f"{c}:{k}": v for c, d in coefs.items() for k, v in d.items()}
    return dict(coefs)


def real_data(binary, backend):
    refs = json.load(open(os.path.join(FIXTURES, "real", "references.json")))["fits"]
    rows = []
    for name, r in refs.items():
        args = ["fit", "--model", "linear", "--family", r["family"],
                "--data", os.path.join(FIXTURES, "real", r["data"]), "--target", r["target"],
                "--features", ",".join(r["features"]), "--backend", backend, "--json"]
        if "prior" in r:
            args += ["--prior", r["prior"]]
        if "cov" in r:
            args += ["--cov", r["cov"]]
        if "fix" in r:
            args += ["--fix", r["fix"]]
        for key in ("offset", "exposure"):
            if key in r:
                args += ["--" + key, r[key]]
        if ("link" in r or r["family"] == "student-t") and backend != "cpu":
            continue  # links other than the default and the t's two globals: CPU engine only
        if "link" in r:
            args += ["--link", r["link"]]
        got, code = run(binary, args)
        want = flat(r["coefficients"], r["family"])
        have = flat(got["coefficients"], r["family"])
        se = flat(r["std_errors"], r["family"]) if "std_errors" in r else None
        worst_se = max(abs(have[k] - v) / se[k] for k, v in want.items()) if se else float("nan")
        worst_rel = max(abs(have[k] - v) / abs(v) for k, v in want.items() if v != 0)
        se_rel = float("nan")
        if se:
            have_se = flat(got["std_errors"], r["family"])
            se_rel = max(abs(float(have_se[k]) - v) / v for k, v in se.items())
        nll_rel = abs(got["nll"] - r["nll"]) / abs(r["nll"])
        precision = got["precision"]
        if precision.startswith("f32"):
            precision += f" (f64 on the {got.get('f64_engine', 'cpu')})"
        rows.append((name, backend, got["method"], precision, got["converged"], code,
                     worst_rel, worst_se, se_rel, nll_rel))
    return rows


def family_fits(binary, backend):
    """fit --family F --column C against the references' family_fits: the largest relative
    errors of the parameters, their standard errors and the NLL."""
    refs = json.load(open(os.path.join(FIXTURES, "real", "references.json")))["family_fits"]
    rows = []
    for name, r in sorted(refs.items()):
        args = ["fit", "--family", r["family"], "--data", os.path.join(FIXTURES, "real", r["data"]),
                "--column", r["column"], "--backend", backend, "--json"]
        if "fix" in r:
            args += ["--fix", r["fix"]]
        got, code = run(binary, args)
        # Relative errors; absolute where the reference is 0 (a parameter held at 0).
        rel = lambda have, want: abs(float(have) - want) / (abs(want) if want else 1.0)
        params = max(rel(got["params"][k], v) for k, v in r["params"].items())
        ses = max(rel(got["std_errors"][k], v) for k, v in r["std_errors"].items())
        rows.append((name, backend, got["precision"], got["converged"], params, ses,
                     rel(got["nll"], r["nll"])))
    return rows


def lre(a, b):
    err = abs(a) if b == 0 else abs(a - b) / abs(b)
    return 15.0 if err == 0 else min(15.0, -math.log10(err))


def nist(binary, backend):
    rows = []
    tmp = os.path.join("/tmp", f"likely-accuracy-{os.getpid()}")
    os.makedirs(tmp, exist_ok=True)
    for name in ["Norris", "Pontius", "NoInt1", "NoInt2", "Longley", "Wampler1", "Wampler2",
                 "Wampler3", "Wampler4", "Wampler5", "Filip"]:
        lines = open(os.path.join(FIXTURES, "nist", name + ".dat")).read().splitlines()
        cert = [float(l.split()[1]) for l in lines
                if len(l.split()) == 3 and l.split()[0][:1] == "B" and l.split()[0][1:].isdigit()]
        start = max(i for i, l in enumerate(lines) if l.startswith("Data:")) + 1
        data = [list(map(float, l.split())) for l in lines[start:] if l.strip()]
        intercept = not name.startswith("NoInt")
        if len(data[0]) > 2:
            cols = [[r[j] for r in data] for j in range(1, len(data[0]))]
        else:
            degree = len(cert) - intercept
            cols = [[r[1] ** k for r in data] for k in range(1, degree + 1)]
        path = os.path.join(tmp, name + ".csv")
        with open(path, "w") as out:
            out.write("y," + ",".join(f"x{j + 1}" for j in range(len(cols))) + "\n")
            for i, r in enumerate(data):
                out.write(repr(r[0]) + "," + ",".join(repr(c[i]) for c in cols) + "\n")
        args = ["fit", "--model", "linear", "--family", "gaussian", "--data", path, "--target", "y",
                "--backend", backend, "--json"] + ([] if intercept else ["--no-intercept"])
        got, code = run(binary, args)
        keys = (["intercept"] if intercept else []) + [f"x{j + 1}" for j in range(len(cols))]
        digits = min(lre(got["coefficients"][k], c) for k, c in zip(keys, cert))
        rows.append((name, backend, digits, got["converged"], code))
    return rows


def main():
    binary = sys.argv[1]
    backends = sys.argv[2:] or ["cpu"]
    print("| fit | engine | method | precision | converged (exit) | max rel. error | max error / SE | max SE rel. error | NLL rel. error |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b in backends:
        for r in real_data(binary, b):
            print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} ({r[5]}) | {r[6]:.1e} | {r[7]:.1e} | {r[8]:.1e} | {r[9]:.1e} |")
    print()
    print("| fit | engine | precision | converged | params | standard errors | NLL |")
    print("|---|---|---|---|---|---|---|")
    for b in backends:
        for r in family_fits(binary, b):
            print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.1e} | {r[5]:.1e} | {r[6]:.1e} |")
    print()
    print("| NIST StRD | engine | correct digits (LRE) | converged (exit) |")
    print("|---|---|---|---|")
    for b in backends:
        for r in nist(binary, b):
            print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]} ({r[4]}) |")


if __name__ == "__main__":
    main()
