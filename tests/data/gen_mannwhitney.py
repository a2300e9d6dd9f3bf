#!/usr/bin/env python3
"""Writes tests/data/mannwhitney.json: the expected numbers for backstop's Mann-Whitney test
(src/judge/stats.rs), computed by scipy. Run once, check the output in; the Rust test reads
the JSON and never runs Python.

    python3 -m venv /tmp/sci && /tmp/sci/bin/pip install scipy numpy
    /tmp/sci/bin/python tests/data/gen_mannwhitney.py > tests/data/mannwhitney.json

Per case: x (post), y (pre), and for each alternative scipy's U (U1, the statistic of x) and
p-value with method="asymptotic", use_continuity=True; the Hodges-Lehmann estimate (median of
all pairwise differences x_i - y_j, numpy); and its confidence interval at 0.9 and 0.98 with
the formula documented in stats.rs (k = floor(N/2 - z*sqrt(n1*n2*(n1+n2+1)/12)), z from
scipy's norm.ppf). Plus spot values of norm.sf and norm.ppf. Seeded: reruns give the same file.
"""
import json
import math

import numpy as np
import scipy
from scipy import stats

rng = np.random.default_rng(20240610)
cases = []


def add(name, x, y):
    cases.append((name, [float(v) for v in x], [float(v) for v in y]))


# Small samples, n = 1..5 on each side.
for n1 in range(1, 6):
    for n2 in range(1, 6):
        add(f"small {n1}x{n2}", rng.normal(0.3, 1.0, n1).round(3), rng.normal(0, 1, n2).round(3))
# Ties: integers from a small range, and heavy ties.
for n1, n2 in [(3, 4), (8, 8), (12, 20), (30, 25)]:
    add(f"ties int {n1}x{n2}", rng.integers(0, 4, n1), rng.integers(0, 3, n2))
add("ties heavy", [1, 1, 1, 2, 2, 2, 2, 3], [1, 1, 2, 2, 2, 2, 2, 2, 1])
add("ties across sides", [0.5, 0.5, 0.7, 0.7, 0.9], [0.5, 0.7, 0.7, 0.1, 0.3])
# All equal: sigma is zero.
add("all equal 1x1", [2.0], [2.0])
add("all equal 5x7", [3.0] * 5, [3.0] * 7)
add("all equal 12x12", [0.0] * 12, [0.0] * 12)
# Complete separation.
add("separated up", [10, 11, 12, 13, 14], [1, 2, 3, 4, 5])
add("separated down", [1, 2, 3], [10, 11, 12, 13])
add("separated one tie", [5, 6, 7, 8], [1, 2, 3, 5])
# Latency-like: lognormal, shifted and not, at sizes backstop sees.
for n1, n2, factor in [(10, 10, 1.0), (10, 10, 1.5), (20, 60, 1.0), (20, 60, 1.2),
                       (30, 60, 1.5), (60, 60, 0.7), (100, 100, 1.05), (200, 500, 1.0),
                       (500, 500, 1.3), (500, 500, 1.0), (7, 300, 2.0)]:
    pre = rng.lognormal(math.log(0.1), 0.3, n2)
    post = rng.lognormal(math.log(0.1 * factor), 0.3, n1)
    add(f"lognormal {n1}x{n2} x{factor}", post.round(6), pre.round(6))
# Error ratios: many zeros.
for n1, n2, p in [(15, 30, 0.3), (40, 40, 0.5)]:
    pre = np.where(rng.random(n2) < 0.5, 0.0, rng.random(n2) * 0.01)
    post = np.where(rng.random(n1) < p, 0.0, rng.random(n1) * 0.02)
    add(f"zeros {n1}x{n2}", post.round(5), pre.round(5))
# Negative values and exact floats that are not round.
add("negatives", rng.normal(-2, 1, 9), rng.normal(-2.5, 1, 11))
add("huge magnitudes", rng.normal(1e9, 1e6, 13), rng.normal(1e9, 1e6, 17))


def hl(x, y):
    d = np.subtract.outer(np.asarray(x), np.asarray(y)).ravel()
    return float(np.median(d)), np.sort(d)


def interval(d, n1, n2, confidence):
    n = len(d)
    z = stats.norm.ppf((1 + confidence) / 2)
    k = math.floor(n / 2 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12))
    k = min(max(k, 1), (n + 1) // 2)
    return [float(d[k - 1]), float(d[n - k])]


out = []
for name, x, y in cases:
    est, d = hl(x, y)
    case = {"name": name, "x": x, "y": y, "hl": est,
            "interval_90": interval(d, len(x), len(y), 0.9),
            "interval_98": interval(d, len(x), len(y), 0.98)}
    for alt in ["greater", "less", "two-sided"]:
        r = stats.mannwhitneyu(x, y, alternative=alt, method="asymptotic", use_continuity=True)
        case[alt] = {"u": float(r.statistic), "p": float(r.pvalue)}
    out.append(case)

zs = [-40, -8.5, -5, -3, -2.5, -1.2, -0.3, 0, 0.1, 0.7, 1.0, 1.7, 2.4, 3.1, 3.6, 5, 8, 12, 37.5]
ps = [1e-12, 0.001, 0.01, 0.025, 0.3, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999999]
print(json.dumps({
    "generator": f"tests/data/gen_mannwhitney.py, scipy {scipy.__version__}, numpy {np.__version__}",
    "cases": out,
    "sf": [[z, float(stats.norm.sf(z))] for z in zs],
    "ppf": [[p, float(stats.norm.ppf(p))] for p in ps],
}, indent=1))
