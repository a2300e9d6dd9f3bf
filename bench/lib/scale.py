"""Benchmark 2: check engine cost and scale.

backstop observes N watches x 3 http checks at 1 s against local nginx targets; Prometheus +
blackbox_exporter probe the same 3N URLs at 1 s. For each N: probes/s achieved, CPU seconds per
10,000 probes, interval jitter and schedule lag, resident memory.
"""

import os
import threading
import time

from common import (cpu_seconds, cpu_split, http_get, log, parse_ts, quantile, rss_kb,
                    thread_cpu, wait_until)
from profiling import io_counters, perf_profile, thread_states
from daemons import (Backstop, Simulator, prom_query, prometheus_config, start_blackbox,
                     start_nginx, start_prometheus, sum_metric, tree_pids)
from cpuhog import CpuHog
import apicost

CHECKS = 3
KEEP_UP = 0.97  # achieved/expected probes below this: cannot keep up
LAG_LIMIT = 0.050
SETTLE = 2.0  # seconds between the counter fetch and the lag window


class RssSampler:
    def __init__(self, pids, every=1.0):
        self.pids, self.every = pids, every
        self.values = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.values.append(sum(rss_kb(p) for p in self.pids))
            except OSError:
                pass
            self._stop.wait(self.every)

    def stop(self):
        self._stop.set()
        self._t.join()
        return {"rss_max_kb": max(self.values, default=0),
                "rss_last_kb": self.values[-1] if self.values else 0}


def sample_names(n, most=500):
    """The watches whose samples the lag figures read: all of them up to `most`, else `most`
    spread evenly over w0..w{n-1} (every k-th)."""
    k = -(-n // most)
    return [f"w{i}" for i in range(0, n, k)]


def details(bs, names):
    """Each watch's detail (`GET /v1/watches/{name}`, with every check's samples)."""
    return [bs.watch(x) for x in names]


def lag_stats(watches, t0, t1, interval=1.0):
    """From watch details: per round, the interval since the previous round minus `interval`
    (jitter, as Prometheus' prometheus_target_interval_length_seconds measures it) and the
    delay behind the fixed schedule judging_from + k x interval (which also grows when rounds
    are skipped or pushed back). A sample's `at` is taken after its probes answered, so both
    include the probe's own latency."""
    jitter, behind, rounds_seen, errors = [], [], 0, 0
    for w in watches:
        o = w.get("observation")
        if not o or not o.get("checks"):
            continue
        errors += sum(1 for c in o["checks"] for x in c["samples"]
                      if x.get("result") == "error" and t0 <= parse_ts(x["at"]) <= t1)
        start = parse_ts(o["judging_from"])
        samples = o["checks"][0]["samples"]
        rounds = o["rounds"]
        ats = [parse_ts(s["at"]) for s in samples]
        first_round = rounds - len(ats)
        for j, at in enumerate(ats):
            if not (t0 <= at <= t1):
                continue
            rounds_seen += 1
            behind.append(at - (start + (first_round + j) * interval))
            if j > 0:
                jitter.append(at - ats[j - 1] - interval)
    out = {"rounds_in_window": rounds_seen, "error_samples_in_window": errors}
    for name, xs in (("jitter", jitter), ("behind", behind)):
        if xs:
            out[f"{name}_p50_ms"] = quantile(xs, 0.5) * 1000
            out[f"{name}_p99_ms"] = quantile(xs, 0.99) * 1000
            out[f"{name}_max_ms"] = max(xs) * 1000
    return out


def late_rounds(watches, t0, t1, limit, interval=1.0):
    """Rounds in [t0, t1] that came more than `limit` seconds late after the previous one."""
    late = 0
    for w in watches:
        o = w.get("observation")
        if not o or not o.get("checks"):
            continue
        ats = [parse_ts(x["at"]) for x in o["checks"][0]["samples"]]
        late += sum(1 for a, b in zip(ats, ats[1:]) if t0 <= b <= t1 and b - a - interval > limit)
    return late


def timed(fn):
    """(value, monotonic midpoint of the call)."""
    a = time.monotonic()
    v = fn()
    return v, (a + time.monotonic()) / 2


def totals(bs):
    """(all samples, error samples, scheduler lag in s) from one /metrics."""
    text = bs.metrics_text()
    return (sum_metric(text, "backstop_checks_total"),
            sum_metric(text, "backstop_checks_total", {"result": "error"}),
            sum_metric(text, "backstop_scheduler_lag_seconds"))


def status_rounds(bs):
    """Rounds done so far, summed over every watch's observation (from /v1/status)."""
    return sum((w.get("observation") or {}).get("rounds", 0) for w in bs.status(limit=5000))


def start_observing(ctx, sim, nginx, n, state_dir, tag):
    """A daemon with n watches x 3 http checks, every watch announced (spread over 1 s)."""
    workdir = os.path.join(ctx.tmp, f"scale-backstop-{n}{tag}")
    watches = [{
        "name": f"w{i}", "deployer": "sim",
        "options": {"warmup": "0s", "window": "10m", "interval": "1s"},
        "checks": [{"name": f"c{j}", "kind": "http", "url": f"{nginx}/w{i}/c{j}",
                    "failure_limit": 3} for j in range(CHECKS)],
    } for i in range(n)]
    t_start = time.monotonic()
    bs = Backstop(ctx.procs, ctx.binary, workdir, {"sim": {"url": sim.deployer}}, watches,
                  name=f"backstop-scale-{n}{tag}", state_dir=state_dir)
    ready_s = time.monotonic() - t_start
    # Deployments arrive spread over one interval (as Prometheus spreads its targets), not all
    # in the same millisecond.
    t_ann = time.monotonic()
    ann_lat = []
    for i in range(n):
        target = t_ann + i / n
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        a = time.monotonic()
        bs.announce(f"w{i}", "Releases-1", rollback_safe=True)
        ann_lat.append(time.monotonic() - a)
    return bs, {"ready_s": ready_s, "announce_s": time.monotonic() - t_ann,
                "announce_p99_ms": quantile(ann_lat, 0.99) * 1000,
                "announce_max_ms": max(ann_lat) * 1000}


def measure_window(bs, warm, window, hog):
    """Settle, read the counters, then the lag window; the raw readings."""
    time.sleep(warm)
    pid = bs.pid
    m = {}
    (m["c0"], m["e0"], _), m["m0"] = timed(lambda: totals(bs))
    m["r0"], m["rm0"] = timed(lambda: status_rounds(bs))
    m["u0"], m["s0"] = cpu_split(pid)
    m["th0"], m["io0"] = thread_cpu(pid), io_counters(pid)
    m["hog0"] = hog.cpu() if hog else 0.0
    m["t0"] = time.monotonic()
    rss = RssSampler([pid])
    # Rendering /metrics used to take a worker for a while at large N (see metrics_*_ms);
    # leave the rounds the reading above may delay out of the lag window.
    time.sleep(SETTLE)
    m["w0"] = time.time()
    time.sleep(window)
    m["w1"] = time.time()
    m["rss"] = rss.stop()
    m["u1"], m["s1"] = cpu_split(pid)
    m["th1"], m["io1"] = thread_cpu(pid), io_counters(pid)
    m["hog1"] = hog.cpu() if hog else 0.0
    m["t1"] = time.monotonic()
    (m["c1"], m["e1"], m["sched_lag"]), m["m1"] = timed(lambda: totals(bs))
    m["r1"], m["rm1"] = timed(lambda: status_rounds(bs))
    return m


def backstop_step(ctx, sim, nginx, n, warm, window, profile=False, state_dir=None, tag="",
                  loaded=False):
    """One step. loaded: `stress-ng --cpu 1` runs from before the daemon starts until the
    window ends (profile is then ignored: it would profile the quiet machine)."""
    if loaded:
        tag += "-loaded"
        profile = False
    hog = CpuHog(ctx, f"stress-ng-{n}{tag}").start() if loaded else None
    try:
        bs, start = start_observing(ctx, sim, nginx, n, state_dir, tag)
        m = measure_window(bs, warm, window, hog)
    finally:
        if hog:
            hog.stop()
    pid = bs.pid
    w0, w1 = m["w0"], m["w1"]
    # The lag figures read samples, which only watch details carry; fetched after the window
    # (the window's samples are among the 20 each check keeps) from a subset of the watches.
    names = sample_names(n)
    ts = time.monotonic()
    lag = lag_stats(details(bs, names), w0, w1)
    details_s = time.monotonic() - ts
    ta = time.time()
    api, summaries = apicost.measure(bs, n)
    interference = None
    if n >= 1000:
        # The reads just made (/metrics, /v1/status pages, one watch) ran beside the rounds:
        # how late did they make the rounds during and right after them?
        time.sleep(1.5)
        w2 = time.time()
        st2 = details(bs, names)
        interference = lag_stats(st2, ta, w2)
        interference["late_rounds_50ms"] = late_rounds(st2, ta, w2, 0.05)
    text = bs.metrics_text()
    errors = sum_metric(text, "backstop_checks_total", {"result": "error"})
    fails = sum_metric(text, "backstop_checks_total", {"result": "fail"})
    verdicts = {v: sum_metric(text, "backstop_verdicts_total", {"verdict": v})
                for v in ("verified", "condemned", "inconclusive", "superseded")}
    observing = sum(1 for w in summaries if w.get("observation"))
    probes = m["c1"] - m["c0"]
    span = m["m1"] - m["m0"]
    rate = probes / span
    window_errors = m["e1"] - m["e0"]
    # Cross-check: rounds from /v1/status x checks per round.
    rate_status = (m["r1"] - m["r0"]) * CHECKS / (m["rm1"] - m["rm0"])
    source = "backstop_checks_total"
    if probes == 0 and rate_status > 0:
        # backstop_checks_total did not move while rounds were done (a daemon bug): count
        # rounds instead, and errors from the sampled watches' samples in the lag window.
        log(f"  warning: backstop_checks_total did not move at N={n} while "
            f"{m['r1'] - m['r0']:.0f} rounds were done; probes/s from /v1/status rounds")
        source = "/v1/status rounds x checks (backstop_checks_total did not move)"
        probes, span, rate = (m["r1"] - m["r0"]) * CHECKS, m["rm1"] - m["rm0"], rate_status
        window_errors = lag.get("error_samples_in_window", 0)
    keeps_up = (rate >= KEEP_UP * n * CHECKS and not window_errors
                and lag.get("jitter_p99_ms", 1e9) < LAG_LIMIT * 1000)
    # profile="auto": only where it cannot keep up (while the load is still on)
    states = report = None
    if profile is True or (profile == "auto" and not keeps_up):
        states = thread_states(pid, 4.0)
        report = perf_profile(pid, 8, ctx.outdir, f"backstop-{n}{tag}")
    stop_s = ctx.procs.stop(bs.proc)
    u, s_ = m["u1"] - m["u0"], m["s1"] - m["s0"]
    cpu = u + s_
    dt = m["t1"] - m["t0"]
    io0, io1, th0, th1 = m["io0"], m["io1"], m["th0"], m["th1"]
    res = {
        "system": "backstop", "n": n, "checks": n * CHECKS, "window_s": round(dt, 2),
        "tag": tag, "load": "1 core busy" if loaded else "quiet",
        "stress_cores": (m["hog1"] - m["hog0"]) / dt if loaded else None,
        "state_dir": state_dir or "(bench temp dir, disk)",
        "window_errors": window_errors, "ok_probes_per_s": (probes - window_errors) / span,
        "rounds_per_s": rate / CHECKS,
        "expected_per_s": n * CHECKS, "probes": probes, "probes_per_s": rate,
        "probes_source": source, "probes_per_s_status_rounds": rate_status,
        "cpu_s": cpu, "cpu_user_s": u, "cpu_sys_s": s_,
        "cpu_cores": cpu / dt,
        "cpu_s_per_10k": (cpu / dt) / rate * 10000 if rate else None,
        "threads_cpu_s": {k: round(th1.get(k, 0) - th0.get(k, 0), 3) for k in th1},
        "write_syscalls_per_s": (io1.get("syscw", 0) - io0.get("syscw", 0)) / dt,
        "disk_write_kb_per_s": (io1.get("write_bytes", 0) - io0.get("write_bytes", 0)) / dt / 1024,
        "errors_total": errors, "fails_total": fails, "verdicts": verdicts,
        "observing": observing,
        **start,
        "scheduler_lag_ms": m["sched_lag"] * 1000,
        "lag_sampled_watches": len(names), "lag_details_fetch_s": details_s,
        "status_fetch_s": api["status_first_page_ms"] / 1000, "stop_s": stop_s,
        "profile": report,
        "metrics_fetch_ms": api["metrics_first_ms"], "metrics_bytes": api["metrics_bytes"],
        "api": api,
        "interference": interference,
        "lag_window_s": round(w1 - w0, 2),
        "thread_states": states,
        **m["rss"], **lag,
    }
    res["keeps_up"] = keeps_up
    return res


def blackbox_step(ctx, nginx, n, warm, window, nginx_pids, profile=False):
    workdir = os.path.join(ctx.tmp, f"scale-blackbox-{n}")
    os.makedirs(workdir, exist_ok=True)
    bb, bb_addr = start_blackbox(ctx.procs, workdir, name=f"blackbox-scale-{n}")
    targets = [f"{nginx}/w{i}/c{j}" for i in range(n) for j in range(CHECKS)]
    conf = os.path.join(workdir, "prometheus.yml")
    # scrape_timeout 800ms = backstop's default check timeout at a 1 s interval (0.8 x interval)
    prometheus_config(conf, "1s", "1s", "800ms", bb_addr, targets)
    prom, prom_url = start_prometheus(ctx.procs, workdir, conf, name=f"prometheus-scale-{n}")

    def scrapes():
        text = http_get(prom_url + "/metrics")[1].decode()
        return sum_metric(text, "prometheus_target_interval_length_seconds_count",
                          {"interval": "1s"})

    def count(q, at=None):
        r = prom_query(prom_url, q, at)
        return float(r[0]["value"][1]) if r else 0.0

    wait_until(lambda: count("count(up)") >= n * CHECKS, 60, 0.5, "all targets scraped once")
    time.sleep(warm)
    c0, m0 = timed(scrapes)
    bu0, bs0 = cpu_split(bb.pid)
    p0 = cpu_seconds(prom.pid)
    ng0 = sum(cpu_seconds(p) for p in nginx_pids)
    t0, w0 = time.monotonic(), time.time()
    rss = RssSampler([bb.pid], 1.0)
    rss_p = RssSampler([prom.pid], 1.0)
    time.sleep(window)
    rv, rp = rss.stop(), rss_p.stop()
    bu1, bs1 = cpu_split(bb.pid)
    p1 = cpu_seconds(prom.pid)
    ng1 = sum(cpu_seconds(p) for p in nginx_pids)
    t1, w1 = time.monotonic(), time.time()
    c1, m1 = timed(scrapes)
    text = http_get(prom_url + "/metrics")[1].decode()
    q = {}
    for quant in ("0.5", "0.9", "0.99"):
        v = sum_metric(text, "prometheus_target_interval_length_seconds",
                       {"interval": "1s", "quantile": quant})
        q[quant] = (v - 1.0) * 1000
    # What the TSDB holds for the window: scrapes attempted and answered, probes succeeded.
    rng = f"{int(w1 - w0)}s"
    time.sleep(1.5)  # let the last scrapes of the window land
    attempted = count(f"sum(count_over_time(up[{rng}]))", w1)
    answered = count(f"sum(sum_over_time(up[{rng}]))", w1)
    succeeded = count(f"sum(sum_over_time(probe_success[{rng}]))", w1)
    dur = prom_query(prom_url, f"quantile(0.99, max_over_time(probe_duration_seconds[{rng}]))", w1)
    report = perf_profile(bb.pid, 8, ctx.outdir, f"blackbox-{n}") if profile else None
    ctx.procs.stop(prom)
    ctx.procs.stop(bb)
    probes = c1 - c0
    span = m1 - m0
    rate = probes / span
    ok_rate = succeeded / (w1 - w0)
    cpu_bb = (bu1 - bu0) + (bs1 - bs0)
    cpu_p = p1 - p0
    dt = t1 - t0
    res = {
        "system": "blackbox", "n": n, "checks": n * CHECKS, "window_s": round(dt, 2),
        "expected_per_s": n * CHECKS, "probes": probes, "probes_per_s": rate,
        "scrapes_attempted_tsdb": attempted, "scrapes_answered_tsdb": answered,
        "probes_succeeded_tsdb": succeeded, "ok_probes_per_s": ok_rate,
        "cpu_s": cpu_bb, "cpu_user_s": bu1 - bu0, "cpu_sys_s": bs1 - bs0,
        "cpu_cores": cpu_bb / dt,
        "cpu_s_per_10k": (cpu_bb / dt) / rate * 10000 if rate else None,
        "prometheus_cpu_s": cpu_p, "prometheus_cpu_cores": cpu_p / dt,
        "with_prometheus_cpu_s_per_10k": ((cpu_bb + cpu_p) / dt) / rate * 10000 if rate else None,
        "nginx_cpu_cores": (ng1 - ng0) / dt,
        "jitter_p50_ms": q["0.5"], "jitter_p90_ms": q["0.9"], "jitter_p99_ms": q["0.99"],
        "probe_duration_p99_ms": float(dur[0]["value"][1]) * 1000 if dur else None,
        "rss_max_kb": rv["rss_max_kb"], "rss_last_kb": rv["rss_last_kb"],
        "prometheus_rss_max_kb": rp["rss_max_kb"], "profile": report,
    }
    res["keeps_up"] = (ok_rate >= KEEP_UP * n * CHECKS and q["0.99"] < LAG_LIMIT * 1000)
    return res


def ladder(step, steps, beyond):
    """Runs step(n) up the ladder until one cannot keep up; then one bisection between the
    last good N and the failing one. `beyond` steps run only while everything kept up."""
    out = []
    for n in steps + beyond:
        r = step(n)
        out.append(r)
        if not r["keeps_up"]:
            good = [x["n"] for x in out if x["keeps_up"]]
            if good and n - good[-1] > 100:
                mid = int(round((good[-1] + n) / 2, -2))
                if good[-1] < mid < n:
                    out.append(step(mid))
            break
    return sorted(out, key=lambda x: x["n"])


def describe(r):
    s = (f"{r['system']} N={r['n']}: {r['probes_per_s']:.0f}/s of {r['expected_per_s']}, "
         f"{r['cpu_s_per_10k'] or 0:.3f} cpu-s/10k probes, jitter p99 "
         f"{r.get('jitter_p99_ms', float('nan')):.1f} ms, rss {r['rss_max_kb'] / 1024:.1f} MB")
    if r["system"] == "backstop":
        s += (f", errors in window {r['window_errors']:.0f}, scheduler lag "
              f"{r['scheduler_lag_ms']:.0f} ms, /metrics {r['metrics_bytes'] / 1e6:.2f} MB in "
              f"{r['api']['metrics_mean_ms']:.0f} ms, status page "
              f"{r['api']['status_first_page_ms']:.0f} ms")
        if r.get("load") != "quiet":
            s += f", {r['load']} (stress-ng {r['stress_cores'] or 0:.2f} cores)"
    else:
        s += f", ok probes {r['ok_probes_per_s']:.0f}/s"
    return s + ("" if r["keeps_up"] else "  <- cannot keep up")


TARGET_N = 3400  # 3,400 x 3 = 10,200 checks/s: the target of 10,000 checks/s
NGINX_WORKERS = 2  # one per core: a single worker would saturate before backstop does


def run(ctx, quick=False):
    if quick:
        steps, beyond, warm, window = [100, 1000], [], 3, 6
        loaded = [100]
        bb_steps = [100, 300]
    else:
        # Past 3,400 the quiet ladder looks for the highest N that keeps up (target: 20,000
        # checks/s, N = 6,667); loaded, one core is busy with stress-ng for the whole step.
        steps, beyond, warm, window = [10, 100, 300, 600, 1000], [
            2000, TARGET_N, 5000, 6700, 8000, 10000], 4, 10
        loaded = [300, 1000, TARGET_N]
        bb_steps = steps
    nginx_proc, nginx = start_nginx(ctx.procs, os.path.join(ctx.tmp, "nginx"),
                                    workers=NGINX_WORKERS)
    nginx_pids = tree_pids(nginx_proc.pid)
    sim = Simulator(ctx.procs, ctx.binary, name="sim-scale")
    results = {"nginx": nginx, "nginx_workers": NGINX_WORKERS, "warm_s": warm,
               "window_s": window, "keep_up_ratio": KEEP_UP,
               "lag_limit_ms": LAG_LIMIT * 1000, "lag_sample_most": 500, "target_n": TARGET_N,
               "backstop": [], "loaded": [], "blackbox": [], "diagnosis": []}

    def bs_step(n, is_loaded=False):
        ng0 = sum(cpu_seconds(p) for p in nginx_pids)
        t0 = time.monotonic()
        profile = False if quick else (True if n in (1000, TARGET_N) else "auto")
        r = backstop_step(ctx, sim, nginx, n, warm, window, profile=profile, loaded=is_loaded)
        r["nginx_cpu_cores"] = (sum(cpu_seconds(p) for p in nginx_pids) - ng0) / (
            time.monotonic() - t0)
        log("  " + describe(r))
        results["loaded" if is_loaded else "backstop"].append(r)
        ctx.save_partial("scale", results)
        return r

    def bb_step(n):
        r = blackbox_step(ctx, nginx, n, warm, window, nginx_pids)
        log("  " + describe(r))
        results["blackbox"].append(r)
        ctx.save_partial("scale", results)
        return r

    results["backstop"] = ladder(bs_step, steps, beyond)
    for n in loaded:
        log(f"  N={n} with one core kept busy (stress-ng --cpu 1)")
        bs_step(n, is_loaded=True)
    failed = [r for r in results["backstop"] if not r["keeps_up"]]
    if not quick:
        # The first failing N, or the top of the ladder, with the state database on tmpfs:
        # how much of the load is the state store's (fsync)?
        n = failed[-1]["n"] if failed else results["backstop"][-1]["n"]
        shm = f"/dev/shm/backstop-bench-{os.getpid()}"
        log(f"  diagnosis: N={n} again with the state directory on tmpfs ({shm})")
        try:
            r = backstop_step(ctx, sim, nginx, n, warm, window, profile=True, state_dir=shm,
                              tag="-tmpfs")
        finally:
            import shutil
            shutil.rmtree(shm, ignore_errors=True)
        log("  " + describe(r) + " (state on tmpfs)")
        results["diagnosis"].append(r)
    if failed and not quick:
        # the boundary once more, to show how repeatable it is
        n = failed[-1]["n"]
        log(f"  repeat: N={n} (state on disk) once more")
        r = backstop_step(ctx, sim, nginx, n, warm, window, profile=False, tag="-repeat")
        log("  " + describe(r) + " (repeat)")
        results["repeats"] = [r]
    ctx.save_partial("scale", results)
    results["blackbox"] = ladder(bb_step, bb_steps, [])
    ctx.procs.stop(sim.proc)
    ctx.procs.stop(nginx_proc)
    return results
