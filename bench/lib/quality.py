"""Benchmark 4, detection quality: runs the `quality` cargo bench (bench/quality/) and returns
its JSON. The benchmark itself is Rust (it replays deployments through backstop's lifecycle
core); see bench/README.md, section 4.
"""

import json
import os

from common import log

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SEED = 1
DEPLOYMENTS = 10_000
QUICK_DEPLOYMENTS = 2_000


def run(ctx, quick=False, seed=None, deployments=None):
    n = deployments or (QUICK_DEPLOYMENTS if quick else DEPLOYMENTS)
    seed = SEED if seed is None else seed
    out = os.path.join(ctx.tmp, "quality.json")
    argv = ["cargo", "bench", "--bench", "quality", "--", "--seed", str(seed),
            "--deployments", str(n), "--json", out]
    log(f"quality: {n:,} deployments, seed {seed} ({' '.join(argv)})")
    p = ctx.procs.start("quality", argv, cwd=ROOT)
    status = p.wait()
    ctx.procs.stop(p)
    if status != 0:
        raise RuntimeError(f"cargo bench --bench quality exited with {status}; see "
                           f"bench/results/logs/quality.log")
    with open(out) as f:
        data = json.load(f)
    data["command"] = " ".join(argv[:-1] + ["bench/results/quality.json"])
    return data
