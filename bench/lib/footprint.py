"""Benchmark 3: footprint. Time from start to ready (READY=1 on a NOTIFY_SOCKET this script
owns, and the first 200 from /healthz), resident memory and CPU at idle with 10 watches and
with 1,000 watches x 3 checks, and with those 1,000 watches observing at 1 s. For scale, the
idle resident memory of blackbox_exporter and Prometheus started the same way."""

import os
import socket
import time

from common import cpu_seconds, http_get, log, median, rss_kb
from daemons import (Backstop, Simulator, prometheus_config, start_blackbox, start_nginx,
                     start_prometheus, sum_metric)
import scale


def watches(n, target, checks=3):
    return [{
        "name": f"w{i}", "deployer": "sim",
        "options": {"warmup": "0s", "window": "10m", "interval": "1s"},
        "checks": [{"name": f"c{j}", "kind": "http", "url": f"{target}/w{i}/c{j}"}
                   for j in range(checks)],
    } for i in range(n)]


def start_to_ready(ctx, sim, target, n, reps):
    """Fresh state directory each time: the first start of a daemon (creates its database)."""
    out = []
    for r in range(reps):
        workdir = os.path.join(ctx.tmp, f"ready-{n}-{r}")
        os.makedirs(workdir, exist_ok=True)
        sock_path = os.path.join(workdir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(0.002)
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        t0 = time.monotonic()
        bs = Backstop(ctx.procs, ctx.binary, workdir, {"sim": {"url": sim.deployer}},
                      watches(n, target), name=f"backstop-ready-{n}-{r}", env=env, wait=False)
        t0 = bs.started
        ready = healthz = None
        deadline = t0 + 60
        while (ready is None or healthz is None) and time.monotonic() < deadline:
            if ready is None:
                try:
                    msg = sock.recv(4096).decode()
                    if "READY=1" in msg.split("\n"):
                        ready = time.monotonic() - t0
                except socket.timeout:
                    pass
            if healthz is None:
                try:
                    if http_get(bs.url + "/healthz", timeout=1)[0] == 200:
                        healthz = time.monotonic() - t0
                except OSError:
                    pass
        sock.close()
        stop_s = ctx.procs.stop(bs.proc)
        out.append({"ready_s": ready, "healthz_s": healthz, "stop_s": stop_s})
    return {
        "n": n, "reps": out,
        "ready_median_s": median([x["ready_s"] for x in out if x["ready_s"] is not None]),
        "healthz_median_s": median([x["healthz_s"] for x in out if x["healthz_s"] is not None]),
        "ready_max_s": max((x["ready_s"] or 0) for x in out),
    }


def families(text, top=8):
    """Series per metric family (histograms folded into their base name), largest first."""
    count = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        count[name] = count.get(name, 0) + 1
    return sorted(count.items(), key=lambda kv: -kv[1])[:top]


def idle(ctx, sim, target, n, seconds):
    """Configured watches, nothing deployed: the daemon waits."""
    workdir = os.path.join(ctx.tmp, f"idle-{n}")
    bs = Backstop(ctx.procs, ctx.binary, workdir, {"sim": {"url": sim.deployer}},
                  watches(n, target), name=f"backstop-idle-{n}")
    time.sleep(3)
    c0 = cpu_seconds(bs.pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    c1 = cpu_seconds(bs.pid)
    t1 = time.monotonic()
    rss = rss_kb(bs.pid)
    with open(f"/proc/{bs.pid}/status") as f:
        status = {line.split(":")[0]: line.split(":")[1].strip() for line in f}
    text = bs.metrics_text()
    res = {
        "n": n, "checks": n * 3, "seconds": round(t1 - t0, 1),
        "cpu_s": c1 - c0, "cpu_percent": (c1 - c0) / (t1 - t0) * 100,
        "rss_kb": rss, "rss_peak_kb": int(status.get("VmHWM", "0 kB").split()[0]),
        "threads": int(status.get("Threads", "0")),
        "metrics_lines": sum(1 for ln in text.splitlines() if ln and not ln.startswith("#")),
        "metrics_bytes": len(text),
        "state_db_kb": sum(os.path.getsize(os.path.join(dp, f))
                           for dp, _, fs in os.walk(os.path.join(workdir, "state"))
                           for f in fs) // 1024,
        "checks_total": sum_metric(text, "backstop_checks_total"),
        "series_by_family": families(text),
    }
    ctx.procs.stop(bs.proc)
    return res


def heap_profile(ctx, sim, target, n):
    """valgrind massif of a daemon with n idle watches: where its heap goes at start-up."""
    import shutil
    import subprocess
    from profiling import massif_summary
    if not shutil.which("valgrind"):
        return None
    workdir = os.path.join(ctx.tmp, f"massif-{n}")
    out = os.path.join(workdir, "massif.out")
    os.makedirs(workdir, exist_ok=True)
    bs = Backstop(ctx.procs, ctx.binary, workdir, {"sim": {"url": sim.deployer}},
                  watches(n, target), name=f"massif-{n}", wait=False,
                  wrap=["valgrind", "--tool=massif", f"--massif-out-file={out}"])
    from common import wait_http_ok
    wait_http_ok(bs.url + "/healthz", timeout=120, every=0.2)
    time.sleep(2)
    ctx.procs.stop(bs.proc, timeout=60)
    try:
        text = subprocess.run(["ms_print", "--threshold=0.5", out], capture_output=True,
                              text=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    peak = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0].isdigit() and parts[2].replace(",", "").isdigit():
            total = int(parts[2].replace(",", ""))
            peak = max(peak or 0, total)
    return {"n": n, "heap_peak_bytes": peak, "sites": massif_summary(text)}


def references(ctx, nginx):
    """Idle resident memory of the pipeline's programs (nothing to probe, one target)."""
    workdir = os.path.join(ctx.tmp, "ref")
    bb, bb_addr = start_blackbox(ctx.procs, workdir, name="blackbox-idle")
    conf = os.path.join(workdir, "prometheus.yml")
    prometheus_config(conf, "15s", "15s", None, bb_addr, [f"{nginx}/x"])
    prom, _ = start_prometheus(ctx.procs, workdir, conf, name="prometheus-idle")
    time.sleep(5)
    res = {"blackbox_idle_rss_kb": rss_kb(bb.pid), "prometheus_idle_rss_kb": rss_kb(prom.pid)}
    ctx.procs.stop(prom)
    ctx.procs.stop(bb)
    return res


def run(ctx, quick=False):
    reps = 3 if quick else 5
    seconds = 6 if quick else 12
    nginx_proc, nginx = start_nginx(ctx.procs, os.path.join(ctx.tmp, "nginx-fp"))
    sim = Simulator(ctx.procs, ctx.binary, name="sim-footprint")
    res = {}
    log("footprint: start to ready")
    res["ready_10"] = start_to_ready(ctx, sim, nginx, 10, reps)
    res["ready_1000"] = start_to_ready(ctx, sim, nginx, 1000, reps)
    log("footprint: idle")
    res["idle_10"] = idle(ctx, sim, nginx, 10, seconds)
    res["idle_1000"] = idle(ctx, sim, nginx, 1000, seconds)
    log("footprint: 1,000 watches x 3 checks observing at 1 s")
    # settle 20 s in a full run: each check keeps its last 20 samples, memory grows till then
    res["observing_1000"] = scale.backstop_step(ctx, sim, nginx, 1000, 4 if quick else 20,
                                                seconds, tag="-footprint")
    if not quick:
        res["observing_10"] = scale.backstop_step(ctx, sim, nginx, 10, 5, seconds,
                                                  tag="-footprint")
    res["references"] = references(ctx, nginx)
    if not quick:
        log("footprint: heap profile of 1,000 idle watches (valgrind massif)")
        try:
            res["heap_1000"] = heap_profile(ctx, sim, nginx, 1000)
        except Exception as e:  # noqa: BLE001 - optional
            log(f"massif failed: {e}")
    ctx.procs.stop(sim.proc)
    ctx.procs.stop(nginx_proc)
    log(f"footprint: idle 10 watches {res['idle_10']['rss_kb']} kB, "
        f"{res['idle_10']['cpu_percent']:.2f}% CPU; ready in "
        f"{res['ready_10']['ready_median_s'] * 1000:.1f} ms")
    return res
