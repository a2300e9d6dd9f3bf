"""Benchmark 1: time to rollback, backstop against the Prometheus + Alertmanager + webhook
pipeline, on the same simulated service and deployment API.

Equal settings: both sides judge the service's /health every second (backstop's http check;
blackbox_exporter's http probe scraped by Prometheus), three consecutive failures condemn
(failure_limit 3 x interval 1 s; the alert rule's `for: 3s`), evaluation every second,
Alertmanager group_wait 0. Rounds run one after the other on one service: each starts from a
good release that the side has seen healthy, deploys a new bad one (its /health answers 503)
after a random 0-1 s pause (so the bad deployment falls anywhere in the scrape cycle), and
times from the bad deployment's creation to the creation of the rollback deployment, both
stamped by the deployment API itself.

Defaults: each side as documented (backstop: no timing key set, a /health http check and a
5xx-ratio scrape check; Prometheus: 15 s scrape and evaluation as in the shipped
prometheus.yml, Alertmanager: group_wait 30s, group_interval 5m, repeat_interval 4h; `for` =
3 x 15 s). Those rounds take minutes each, so they run in parallel: K services (K simulators)
per side, bad deployments staggered over 15 s. backstop alone also gets K error spikes (health
passes, a quarter of requests fail) and 50 noisy good releases, which must all be kept.
"""

import json
import os
import random
import sys
import threading
import time

from common import (free_port, get_json, log, median, parse_ts, quantile, wait_http_ok,
                    wait_until)
from daemons import (Backstop, Simulator, prom_query, prometheus_config, start_alertmanager,
                     start_blackbox, start_prometheus)

RULES = """groups:
  - name: rollback
    rules:
      - alert: ServiceUnhealthy
        expr: probe_success{{job="health"}} == 0
        for: {for_}
        labels:
          severity: page
        annotations:
          summary: "{{{{ $labels.instance }}}} /health is failing"
"""


def stats(xs):
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "median": median(xs), "p95": quantile(xs, 0.95),
            "min": min(xs), "max": max(xs)}


def wait_rollback(sim, after_ms, marker, timeout):
    def found():
        for d in sim.deployments():
            if d["created_unix_ms"] > after_ms and marker in d["comments"]:
                return d
        return None
    return wait_until(found, timeout, 0.02, f"a rollback deployment ({marker})")


# ---------------------------------------------------------------------------------------------
# backstop, equal settings


def backstop_tuned(ctx, sim, rounds):
    workdir = os.path.join(ctx.tmp, "rollback-backstop")
    watch = {
        "name": "svc", "deployer": "sim",
        "options": {"warmup": "0s", "window": "3s", "interval": "1s",
                    "max_actions": 1000, "max_actions_period": "1h"},
        "checks": [{"name": "health", "kind": "http", "url": f"{sim.service}/health",
                    "failure_limit": 3}],
    }
    # task_poll only changes how soon backstop sees the rollback finish (the next round's
    # start), not the time to the deploy call.
    bs = Backstop(ctx.procs, ctx.binary, workdir,
                  {"sim": {"url": sim.deployer, "task_poll": "250ms"}}, [watch],
                  name="backstop-rollback")
    good = sim.release("1.1.0", "good")
    dep, _ = sim.deploy(good)
    bs.announce("svc", good, dep)

    def settled(release):
        w = bs.watch("svc")
        v = w.get("last_verdict") or {}
        return (w["state"] == "idle" and not w.get("observation")
                and v.get("release") == release and v.get("verdict") == "verified")

    wait_until(lambda: settled(good), 30, 0.05, "the good release verified")
    out = []
    for i in range(rounds):
        time.sleep(random.uniform(0, 1))
        bad = sim.release(f"1.2.{i}", "bad-health")
        dep, t_bad = sim.deploy(bad)
        bs.announce("svc", bad, dep)
        rb = wait_rollback(sim, t_bad, "backstop", 60)
        wait_until(lambda: settled(good), 60, 0.05, "the rollback verified")
        entry = next(h for h in bs.history("svc") if h["release"] == bad)
        ev = bs.verdict(entry["id"])
        check = next(c for c in ev["checks"] if c.get("limit_hit"))
        condemning = parse_ts(check["samples"][-1]["at"]) * 1000
        decided = parse_ts(ev["verdict"]["decided_at"]) * 1000
        r = {
            "round": i, "bad_release": bad, "bad_created_ms": t_bad,
            "rollback_created_ms": rb["created_unix_ms"],
            "time_to_rollback_s": (rb["created_unix_ms"] - t_bad) / 1000,
            "condemning_sample_ms": condemning, "decided_ms": decided,
            "overhead_ms": rb["created_unix_ms"] - condemning,
            "sample_to_decision_ms": decided - condemning,
            "decision_to_call_ms": rb["created_unix_ms"] - decided,
            "target": rb["release"], "samples": len(check["samples"]),
            "verdict": ev["verdict"]["verdict"],
        }
        out.append(r)
        log(f"  backstop round {i + 1}/{rounds}: {r['time_to_rollback_s']:.3f} s, "
            f"overhead {r['overhead_ms']:.1f} ms")
    ctx.procs.stop(bs.proc)
    return out


# ---------------------------------------------------------------------------------------------
# the pipeline


class Pipeline:
    """blackbox_exporter + Prometheus (alert rule) + Alertmanager + the webhook receiver."""

    def __init__(self, ctx, tag, services, scrape, evaluation, scrape_timeout, for_, group_wait,
                 group_interval, repeat_interval, blackbox_timeout=None):
        """services: {instance URL (the probed /health): deployment API base URL}."""
        self.workdir = os.path.join(ctx.tmp, f"pipeline-{tag}")
        os.makedirs(self.workdir, exist_ok=True)
        self.ctx = ctx
        port = free_port()
        mapping = os.path.join(self.workdir, "map.json")
        with open(mapping, "w") as f:
            json.dump(services, f)
        self.events = os.path.join(self.workdir, "receiver.jsonl")
        open(self.events, "w").close()
        self.receiver = ctx.procs.start(f"receiver-{tag}", [
            sys.executable, os.path.join(os.path.dirname(__file__), "receiver.py"),
            "--port", str(port), "--map", mapping, "--log", self.events])
        wait_http_ok(f"http://127.0.0.1:{port}/", 10)
        self.am, am_addr, self.am_url = start_alertmanager(
            ctx.procs, os.path.join(self.workdir, "am"), f"http://127.0.0.1:{port}/alert",
            group_wait, group_interval, repeat_interval, name=f"alertmanager-{tag}")
        self.bb, bb_addr = start_blackbox(ctx.procs, os.path.join(self.workdir, "bb"),
                                          name=f"blackbox-{tag}", timeout=blackbox_timeout)
        rules = os.path.join(self.workdir, "rules.yml")
        with open(rules, "w") as f:
            f.write(RULES.format(for_=for_))
        conf = os.path.join(self.workdir, "prometheus.yml")
        prometheus_config(conf, scrape, evaluation, scrape_timeout, bb_addr, list(services),
                          rule_file=rules, alertmanager=am_addr, job="health")
        self.prom, self.prom_url = start_prometheus(ctx.procs, self.workdir, conf,
                                                    name=f"prometheus-{tag}")
        self.settings = {"scrape_interval": scrape, "evaluation_interval": evaluation,
                         "scrape_timeout": scrape_timeout or "(default)", "for": for_,
                         "group_wait": group_wait, "group_interval": group_interval,
                         "repeat_interval": repeat_interval}

    def healthy(self, n):
        r = prom_query(self.prom_url, 'count(probe_success{job="health"} == 1)')
        return r and int(float(r[0]["value"][1])) == n

    def quiet(self):
        """No alert pending or firing in Prometheus, no alert group in Alertmanager."""
        alerts = get_json(f"{self.prom_url}/api/v1/alerts")["data"]["alerts"]
        if any(a["state"] in ("pending", "firing") for a in alerts):
            return False
        return get_json(f"{self.am_url}/api/v2/alerts/groups") == []

    def event(self, deployment_id):
        with open(self.events) as f:
            for line in f:
                e = json.loads(line)
                if e.get("kind") == "rollback" and e.get("deployment") == deployment_id:
                    return e
        return None

    def duplicates(self):
        with open(self.events) as f:
            return sum(1 for line in f if json.loads(line).get("kind") == "duplicate")

    def stop(self):
        for p in (self.prom, self.bb, self.am, self.receiver):
            self.ctx.procs.stop(p)


def pipeline_tuned(ctx, sim, rounds):
    good = sim.release("1.1.0-p", "good")
    sim.deploy(good)
    wait_until(lambda: sim.running() == good, 10, 0.05, "good release live")
    instance = f"{sim.service}/health"
    pl = Pipeline(ctx, "tuned", {instance: sim.deployer}, "1s", "1s", "800ms", "3s", "0s", "1s",
                  "5s")
    wait_until(lambda: pl.healthy(1), 30, 0.2, "the probe to succeed")
    out = []
    for i in range(rounds):
        wait_until(lambda: sim.running() == good and pl.healthy(1) and pl.quiet(), 60, 0.1,
                   "the pipeline to be quiet")
        time.sleep(2.5)  # > 2 x group_interval: Alertmanager has dropped the resolved group
        time.sleep(random.uniform(0, 1))
        bad = sim.release(f"1.2.{i}-p", "bad-health")
        dep, t_bad = sim.deploy(bad)
        rb = wait_rollback(sim, t_bad, "alertmanager", 90)
        ev = wait_until(lambda: pl.event(rb["id"]), 10, 0.05, "the receiver's record")
        fired = parse_ts(ev["starts_at"]) * 1000
        r = {
            "round": i, "bad_release": bad, "bad_created_ms": t_bad,
            "rollback_created_ms": rb["created_unix_ms"],
            "time_to_rollback_s": (rb["created_unix_ms"] - t_bad) / 1000,
            "fired_ms": fired, "received_ms": ev["received_ms"],
            "fired_to_call_ms": rb["created_unix_ms"] - fired,
            "fired_to_receiver_ms": ev["received_ms"] - fired,
            "receiver_to_call_ms": rb["created_unix_ms"] - ev["received_ms"],
            "target": rb["release"],
        }
        out.append(r)
        log(f"  pipeline round {i + 1}/{rounds}: {r['time_to_rollback_s']:.3f} s, "
            f"firing->call {r['fired_to_call_ms']:.1f} ms")
    dup = pl.duplicates()
    settings = pl.settings
    pl.stop()
    return out, settings, dup


# ---------------------------------------------------------------------------------------------
# documented defaults, K services per side in parallel


def default_checks(s):
    """What a user writes for a web service, every timing left at its default: its /health,
    and the 5xx ratio read from its own /metrics (no Prometheus needed)."""
    return [
        {"name": "health", "kind": "http", "url": f"{s.service}/health"},
        {"name": "errors", "kind": "scrape", "url": f"{s.service}/metrics", "mode": "ratio",
         "numerator": {"metric": "demo_http_requests_total",
                       "labels": {"code": {"regex": "5.."}}},
         "denominator": {"metric": "demo_http_requests_total"}, "max": 0.05},
    ]


def backstop_defaults(ctx, tag, sims, stagger, behaviour, results):
    """One backstop with every timing at its default watching `sims`; each gets a release that
    behaves as `behaviour`, deployed at its `stagger` offset and announced at once. A bad
    release is waited for until its rollback; a good one until its verdict (or a rollback)."""
    workdir = os.path.join(ctx.tmp, f"rollback-backstop-defaults-{tag}")
    deployers = {f"s{i}": {"url": s.deployer} for i, s in enumerate(sims)}
    watches = [{"name": f"d{i}", "deployer": f"s{i}", "checks": default_checks(s)}
               for i, s in enumerate(sims)]
    bs = Backstop(ctx.procs, ctx.binary, workdir, deployers, watches,
                  name=f"backstop-defaults-{tag}")
    t_bads, releases = {}, {}
    good = behaviour == "noisy"

    def deploy(i, s):
        time.sleep(stagger[i])
        rel = s.release("1.2.0", behaviour)
        dep, t_bad = s.deploy(rel)
        t_bads[i], releases[i] = t_bad, rel
        # As a pipeline announces after its deploy step (and as Octopus's DeploymentSucceeded
        # arrives): once the deployment is done and the new release is in place. Told sooner,
        # readiness could see the old release answer and start judging early.
        wait_until(lambda: any(d["id"] == dep and d["done"] for d in s.deployments()), 30,
                   0.01, f"{dep} done")
        bs.announce(f"d{i}", rel, dep)

    threads = [threading.Thread(target=deploy, args=(i, s)) for i, s in enumerate(sims)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, s in enumerate(sims):
        if good:
            # The default window is 10 minutes; backstop judges every deployment through it.
            def judged():
                rb = [d for d in s.deployments()
                      if d["created_unix_ms"] > t_bads[i] and "backstop" in d["comments"]]
                v = bs.watch(f"d{i}").get("last_verdict") or {}
                if rb or v.get("release") == releases[i]:
                    return {"verdict": v.get("verdict"), "rolled_back": bool(rb)}
                return None
            r = wait_until(judged, 900, 0.5, f"d{i}'s verdict")
            results.append({"service": i, **r})
            continue
        rb = wait_rollback(s, t_bads[i], "backstop", 180)
        entry = next(h for h in bs.history(f"d{i}") if h["release"] == releases[i])
        ev = bs.verdict(entry["id"])
        check = next((c["name"] for c in ev["checks"] if c.get("limit_hit")), None)
        results.append({"service": i, "time_to_rollback_s":
                        (rb["created_unix_ms"] - t_bads[i]) / 1000, "target": rb["release"],
                        "condemned_by": check})
    ctx.procs.stop(bs.proc)


def pipeline_defaults(ctx, sims, stagger, results, settings):
    services = {f"{s.service}/health": s.deployer for s in sims}
    # Prometheus' built-in default scrape/evaluation interval is 1m; the prometheus.yml that
    # Prometheus (and Debian's package) ships sets 15s, which is what users start from.
    pl = Pipeline(ctx, "defaults", services, "15s", "15s", None, "45s", "30s", "5m", "4h")
    settings.update(pl.settings)
    wait_until(lambda: pl.healthy(len(sims)), 60, 0.5, "every probe to succeed once")
    t_bads = {}

    def deploy(i, s):
        time.sleep(stagger[i])
        bad = s.release("1.2.0", "bad-health")
        _, t_bads[i] = s.deploy(bad)

    threads = [threading.Thread(target=deploy, args=(i, s)) for i, s in enumerate(sims)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, s in enumerate(sims):
        rb = wait_rollback(s, t_bads[i], "alertmanager", 240)
        results.append({"service": i, "time_to_rollback_s":
                        (rb["created_unix_ms"] - t_bads[i]) / 1000, "target": rb["release"]})
    pl.stop()


def defaults(ctx, k, noisy):
    """Documented defaults. Bad health: backstop against the pipeline, K services each.
    backstop alone also gets K error spikes (health passes, a quarter of requests fail) and
    `noisy` good releases (one failed health check in three, 1% errors) that must be kept."""
    sims_b = [Simulator(ctx.procs, ctx.binary, name=f"sim-defaults-b{i}") for i in range(k)]
    sims_p = [Simulator(ctx.procs, ctx.binary, name=f"sim-defaults-p{i}") for i in range(k)]
    sims_e = [Simulator(ctx.procs, ctx.binary, name=f"sim-defaults-e{i}") for i in range(k)]
    sims_n = [Simulator(ctx.procs, ctx.binary, name=f"sim-defaults-n{i}") for i in range(noisy)]
    stagger = [random.uniform(0, 15) for _ in range(max(k, noisy))]
    res_b, res_p, res_e, res_n, settings, errors = [], [], [], [], {}, []

    def guard(fn, *a):
        try:
            fn(*a)
        except Exception as e:  # noqa: BLE001 - reported, the other sides go on
            errors.append(f"{fn.__name__} {a[1] if isinstance(a[1], str) else ''}: {e}")

    runs = [
        threading.Thread(target=guard, args=(backstop_defaults, ctx, "health", sims_b, stagger,
                                             "bad-health", res_b)),
        threading.Thread(target=guard, args=(pipeline_defaults, ctx, sims_p, stagger, res_p,
                                             settings)),
        threading.Thread(target=guard, args=(backstop_defaults, ctx, "spike", sims_e, stagger,
                                             "error-spike", res_e)),
        threading.Thread(target=guard, args=(backstop_defaults, ctx, "noisy", sims_n, stagger,
                                             "noisy", res_n)),
    ]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    for s in sims_b + sims_p + sims_e + sims_n:
        ctx.procs.stop(s.proc)
    verdicts = {}
    for r in res_n:
        verdicts[r["verdict"] or "none"] = verdicts.get(r["verdict"] or "none", 0) + 1
    return {"k": k, "backstop": res_b, "pipeline": res_p, "pipeline_settings": settings,
            "error_spike": res_e, "noisy": res_n, "errors": errors,
            "backstop_stats": stats([r["time_to_rollback_s"] for r in res_b]),
            "pipeline_stats": stats([r["time_to_rollback_s"] for r in res_p]),
            "error_spike_stats": stats([r["time_to_rollback_s"] for r in res_e]),
            "noisy_deployments": len(res_n),
            "noisy_false_rollbacks": sum(1 for r in res_n if r["rolled_back"]),
            "noisy_verdicts": verdicts}


def run(ctx, quick=False, rounds=None):
    rounds = rounds or (4 if quick else 20)
    sim = Simulator(ctx.procs, ctx.binary, name="sim-rollback")
    log(f"rollback: backstop, {rounds} rounds (interval 1s, failure_limit 3, warmup 0s)")
    b = backstop_tuned(ctx, sim, rounds)
    log(f"rollback: pipeline, {rounds} rounds (scrape/eval 1s, for 3s, group_wait 0s)")
    p, settings, dup = pipeline_tuned(ctx, sim, rounds)
    ctx.procs.stop(sim.proc)
    bt = [r["time_to_rollback_s"] for r in b]
    pt = [r["time_to_rollback_s"] for r in p]
    res = {
        "rounds": rounds,
        "backstop": b, "pipeline": p, "pipeline_settings": settings,
        "pipeline_duplicate_notifications": dup,
        "backstop_stats": stats(bt), "pipeline_stats": stats(pt),
        "overhead_stats": stats([r["overhead_ms"] for r in b]),
        "pipeline_fired_to_call_stats": stats([r["fired_to_call_ms"] for r in p]),
        "ratio_median": median(pt) / median(bt),
        "ratio_p95": quantile(pt, 0.95) / quantile(bt, 0.95),
    }
    ctx.save_partial("rollback", res)
    if not quick:
        k, noisy = 20, 50
        log(f"rollback: documented defaults, {k} services per side in parallel, {k} error "
            f"spikes and {noisy} noisy good releases (~12 min: the default window is 10m)")
        res["defaults"] = defaults(ctx, k, noisy)
        d = res["defaults"]
        if d["backstop_stats"]["n"] and d["pipeline_stats"]["n"]:
            d["ratio_median"] = d["pipeline_stats"]["median"] / d["backstop_stats"]["median"]
    return res
