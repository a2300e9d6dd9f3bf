"""Benchmark 5, failover: runs the `failover` cargo bench (bench/failover/) and returns its
JSON. Three real backstop nodes on a PostgreSQL cluster of the benchmark's own; each round the
watch's owner is killed (-9) at a seeded moment of a bad deployment's life. See
bench/README.md, section 5.
"""

import json
import os

from common import log

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SEED = 1
ROUNDS = 20
QUICK_ROUNDS = 6


def run(ctx, quick=False, seed=None, rounds=None):
    n = rounds or (QUICK_ROUNDS if quick else ROUNDS)
    seed = SEED if seed is None else seed
    out = os.path.join(ctx.tmp, "failover.json")
    argv = ["cargo", "bench", "--bench", "failover", "--", "--rounds", str(n), "--seed",
            str(seed), "--json", out]
    log(f"failover: {n} rounds per side, seed {seed} ({' '.join(argv)})")
    p = ctx.procs.start("failover", argv, cwd=ROOT)
    status = p.wait()
    ctx.procs.stop(p)
    if status != 0:
        raise RuntimeError(f"cargo bench --bench failover exited with {status}; see "
                           f"bench/results/logs/failover.log")
    if not os.path.exists(out):
        raise RuntimeError("the failover benchmark wrote no results (no PostgreSQL server "
                           "binaries? set BACKSTOP_TEST_PG_BIN); see "
                           "bench/results/logs/failover.log")
    with open(out) as f:
        data = json.load(f)
    data["command"] = " ".join(argv[:-1] + ["bench/results/failover.json"])
    return data
