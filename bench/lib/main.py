"""Driver: runs the selected benchmarks and writes bench/results/*.json and bench/RESULTS.md.

Called by bench/run.sh; see bench/README.md.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import ForeignLoad, Procs, log, rustc_running  # noqa: E402


class Ctx:
    def __init__(self, binary, outdir, keep):
        self.binary = binary
        self.outdir = outdir
        self.tmp = tempfile.mkdtemp(prefix="backstop-bench-")
        self.logdir = os.path.join(self.tmp, "logs")
        os.makedirs(self.logdir)
        self.procs = Procs(self.logdir)
        self.keep = keep

    def save_commands(self):
        """The exact command lines and the configuration files they read."""
        path = os.path.join(self.outdir, "commands.json")
        try:
            with open(path) as f:
                known = json.load(f)
        except (OSError, ValueError):
            known = {}
        known.update(self.procs.commands)
        with open(path, "w") as f:
            json.dump(known, f, indent=1)
        confdir = os.path.join(self.outdir, "configs")
        os.makedirs(confdir, exist_ok=True)
        wanted = ("backstop.toml", "prometheus.yml", "rules.yml", "alertmanager.yml",
                  "blackbox.yml", "nginx.conf")
        for dirpath, _, files in os.walk(self.tmp):
            rel = os.path.relpath(dirpath, self.tmp)
            top = rel.split(os.sep)[0]
            # the large generated configs of the scale steps are kept only for the smallest N
            if (top.startswith(("scale-", "ready-", "idle-", "massif-"))
                    and not top.endswith(("-10", "-10-0"))):
                continue
            for fn in files:
                if fn in wanted:
                    dst = os.path.join(confdir, rel.replace(os.sep, "__") + "__" + fn)
                    shutil.copyfile(os.path.join(dirpath, fn), dst)

    def save_partial(self, name, data):
        with open(os.path.join(self.outdir, f"{name}.json"), "w") as f:
            json.dump(data, f, indent=1, default=str)

    def close(self):
        self.procs.stop_all()
        self.save_commands()
        if self.keep:
            log(f"kept {self.tmp}")
        else:
            # keep the logs of the last run next to the results; drop the rest
            dst = os.path.join(self.outdir, "logs")
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(self.logdir, dst, ignore_dangling_symlinks=True)
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--only", action="append", choices=["1", "2", "3", "4", "5"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, help="benchmarks 1 and 5: rounds per side")
    ap.add_argument("--seed", type=int, help="benchmark 4: the generator's seed")
    ap.add_argument("--deployments", type=int, help="benchmark 4: deployments to generate")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--command", default="")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    only = args.only or ["1", "2", "3", "4", "5"]

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    ctx = Ctx(args.binary, args.outdir, args.keep)
    load = ForeignLoad().start()
    meta = {"quick": args.quick, "only": only, "command": args.command,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load": {}, "durations_s": {}}
    try:
        for b in only:
            t0, tm = time.time(), time.monotonic()
            builds = rustc_running()
            if builds:
                log(f"warning: other builds are running ({builds}); CPU figures will suffer")
            if b == "1":
                import rollback
                log("benchmark 1: time to rollback")
                data = rollback.run(ctx, quick=args.quick, rounds=args.rounds)
                ctx.save_partial("rollback", data)
            elif b == "2":
                import scale
                log("benchmark 2: check engine cost and scale")
                data = scale.run(ctx, quick=args.quick)
                ctx.save_partial("scale", data)
            elif b == "3":
                import footprint
                log("benchmark 3: footprint")
                data = footprint.run(ctx, quick=args.quick)
                ctx.save_partial("footprint", data)
            elif b == "5":
                import failover
                log("benchmark 5: failover")
                data = failover.run(ctx, quick=args.quick, seed=args.seed, rounds=args.rounds)
                ctx.save_partial("failover", data)
            else:
                import quality
                log("benchmark 4: detection quality")
                data = quality.run(ctx, quick=args.quick, seed=args.seed,
                                   deployments=args.deployments)
                ctx.save_partial("quality", data)
            meta["load"][b] = load.summary(since=tm)
            meta["durations_s"][b] = round(time.time() - t0, 1)
            ctx.save_partial(f"meta-{b}", {"load": meta["load"][b],
                                           "duration_s": meta["durations_s"][b],
                                           "quick": args.quick, "command": args.command,
                                           "builds_at_start": builds,
                                           "at": time.strftime("%Y-%m-%d %H:%M:%S %Z")})
    finally:
        load.stop()
        ctx.close()
    log("done")


if __name__ == "__main__":
    main()
