"""A second program keeping one core busy: `stress-ng --cpu 1` (Debian's stress-ng), for the
loaded variant of benchmark 2's steps.

Started through `Procs` and stopped by its pid (SIGTERM, then SIGKILL), then any of its
workers still alive by theirs; `--timeout` ends it on its own should the benchmark die without
stopping it."""

import os
import signal
import time

from common import cpu_seconds, log
from daemons import tree_pids

STRESS_NG = "stress-ng"


class CpuHog:
    """`stress-ng --cpu 1` from `start()` to `stop()` (also usable as a `with` block)."""

    def __init__(self, ctx, name, timeout_s=900):
        self.ctx, self.name, self.timeout_s = ctx, name, timeout_s
        self.proc = None
        self.pids = []

    def start(self):
        self.proc = self.ctx.procs.start(self.name, [
            STRESS_NG, "--cpu", "1", "--timeout", f"{self.timeout_s}s", "--quiet"])
        # its worker is forked at once; wait for it so cpu() counts it from the start
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.pids = tree_pids(self.proc.pid)
            if len(self.pids) > 1 or self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.proc.poll() is not None:
            raise RuntimeError(f"stress-ng exited at once (see {self.name}.log)")
        return self

    def cpu(self):
        """CPU seconds used so far by stress-ng and its workers."""
        total = 0.0
        for p in self.pids:
            try:
                total += cpu_seconds(p)
            except OSError:
                pass
        return total

    def stop(self):
        if self.proc is None:
            return
        self.ctx.procs.stop(self.proc, timeout=5.0)
        for p in self.pids:
            if p == self.proc.pid:
                continue
            try:
                with open(f"/proc/{p}/comm") as f:
                    if not f.read().startswith("stress-ng"):
                        continue  # the pid was reused
                os.kill(p, signal.SIGKILL)
                log(f"  stress-ng worker {p} outlived its parent: killed")
            except OSError:
                pass
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
