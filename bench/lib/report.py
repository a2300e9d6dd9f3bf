"""Writes bench/RESULTS.md from bench/results/*.json, with the machine and the versions.

    report.py --outdir bench/results --out bench/RESULTS.md --binary target/release/backstop
"""

import argparse
import json
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from profiling import top_lines  # noqa: E402
import report_failover  # noqa: E402
import report_quality  # noqa: E402
import report_scale  # noqa: E402

MB = 1_000_000 / 1024  # kB per MB (decimal megabytes)


def sh(*argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr) else "?"
    except (OSError, subprocess.SubprocessError):
        return "not installed"


def load(outdir, name):
    try:
        with open(os.path.join(outdir, f"{name}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def werr(r):
    """Error samples in a backstop step's window (older results: errors since start)."""
    return r.get("window_errors", r.get("errors_total", 0))


def f(x, d=1):
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.{d}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def previous_row(path, key):
    """The row of the machine table for `key` in the RESULTS.md being replaced, if any."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(f"| {key} | "):
                    row = line.rstrip("\n").split(" | ", 1)[1].rstrip(" |")
                    return row.split(" (kept from the last report")[0]
    except OSError:
        pass
    return None


def machine(binary, previous=None):
    cpu = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    commit = sh("git", "-C", root, "describe", "--always", "--dirty")
    return [
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", cpu),
        ("memory", mem),
        ("kernel", platform.release()),
        ("OS", sh("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME")),
        ("backstop", f"{sh(binary, '--version')}, release build of "
                     f"{sh('date', '-r', binary, '+%Y-%m-%d %H:%M:%S %Z')} (sha256 "
                     f"{sh('sh', '-c', f'sha256sum {binary} | cut -c1-16')}); tree now at git "
                     f"{commit}" if os.path.exists(binary) or not previous else
                     f"{previous} (kept from the last report: no binary now; benchmark 4 "
                     f"needs none, it ran at git {commit})"),
        ("rustc", sh("rustc", "--version")),
        ("prometheus", sh("/usr/bin/prometheus", "--version")),
        ("alertmanager", sh("/usr/bin/prometheus-alertmanager", "--version")),
        ("blackbox_exporter", sh("/usr/bin/prometheus-blackbox-exporter", "--version")),
        ("nginx", sh("/usr/sbin/nginx", "-v")),
        ("python3", sh("python3", "--version")),
        ("perf", sh("perf", "--version")),
    ]


def conditions(outdir):
    rows = []
    for b, name in (("1", "time to rollback"), ("2", "scale"), ("3", "footprint"),
                    ("4", "detection quality"), ("5", "failover")):
        m = load(outdir, f"meta-{b}")
        if not m:
            continue
        load_ = m.get("load", {})
        top = ", ".join(f"{c} {v:.2f}" for c, v in load_.get("top", []))
        builds = m.get("builds_at_start") or []
        rows.append(f"| {b}. {name} | {m['at']} | {'quick' if m['quick'] else 'full'} | "
                    f"{m['duration_s']:.0f} s | {f(load_.get('mean_cores'), 2)} / "
                    f"{f(load_.get('max_cores'), 2)} | {top or '—'} | "
                    f"{'yes: ' + str(builds) if builds else 'no'} |")
    if not rows:
        return []
    return [
        "CPU used by processes outside the benchmark's own tree, sampled every 2 s while it ran "
        "(cores; 2.0 = the whole machine):",
        "",
        "| benchmark | finished at | mode | took | other load mean / max | top others at max | "
        "build running at start |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


# ---------------------------------------------------------------------------------------------
# targets


def targets(rb, sc, fp, q=None, fo=None):
    """[(target, required, measured, met (True/False/None), note)]"""
    out = []
    if rb:
        o = rb["overhead_stats"]
        out.append(("backstop overhead: condemning sample → deploy call", "< 50 ms",
                    f"median {f(o['median'])} ms, p95 {f(o['p95'])} ms, max {f(o['max'])} ms "
                    f"(n={o['n']})", o["p95"] < 50, ""))
    else:
        out.append(("backstop overhead: condemning sample → deploy call", "< 50 ms", "not run",
                    None, ""))
    d = (rb or {}).get("defaults")
    for key, what in (("backstop_stats", "/health fails from the start"),
                      ("error_spike_stats", "errors spike, /health passes")):
        st = (d or {}).get(key) or {"n": 0}
        if st["n"]:
            out.append((f"time to rollback with the defaults: {what}", "≤ 20 s",
                        f"median {f(st['median'], 2)} s, max {f(st['max'], 2)} s (n={st['n']})",
                        st["max"] <= 20, ""))
        else:
            out.append((f"time to rollback with the defaults: {what}", "≤ 20 s",
                        "not run (full run only)", None, ""))
    if d and d.get("noisy_deployments"):
        out.append(("noisy good releases rolled back, defaults", "0 of ≥ 50",
                    f"{d['noisy_false_rollbacks']} of {d['noisy_deployments']}",
                    d["noisy_false_rollbacks"] == 0 and d["noisy_deployments"] >= 50, ""))
    else:
        out.append(("noisy good releases rolled back, defaults", "0 of ≥ 50",
                    "not run (full run only)", None, ""))
    if sc and sc.get("backstop"):
        runs = sc["backstop"] + sc.get("repeats", [])
        ok = [r for r in sc["backstop"] if r["keeps_up"]
              and all(x["keeps_up"] for x in runs if x["n"] == r["n"])]
        best = max(ok, key=lambda r: r["probes_per_s"]) if ok else None
        tried = max(r["expected_per_s"] for r in sc["backstop"])
        measured = (f"{f(best['probes_per_s'], 0)} checks/s sustained with no error (N={best['n']:,}, "
                    f"jitter p99 {f(best.get('jitter_p99_ms'))} ms)" if best else "none sustained")
        above = [r for r in runs if best is None or r["n"] > best["n"]]
        for r in sorted(above, key=lambda r: r["n"]):
            measured += (f"; N={r['n']:,}{' (repeat)' if r.get('tag') == '-repeat' else ''}: "
                         f"{f(r['probes_per_s'], 0)}/s, jitter p99 {f(r.get('jitter_p99_ms'))} ms, "
                         f"{f(werr(r), 0)} errors")
        for r in sc.get("diagnosis", []):
            measured += (f"; same N={r['n']:,} with the state on tmpfs: "
                         f"{f(r['probes_per_s'], 0)}/s, jitter p99 {f(r.get('jitter_p99_ms'))} ms, "
                         f"{f(werr(r), 0)} errors")
        note = "" if any(r["expected_per_s"] >= 10000 for r in sc["backstop"]) else \
            f"(highest load tried: {tried:,}/s)"
        out.append(("checks/s on this 2-core machine, p99 lag < 50 ms", "≥ 10,000", measured,
                    bool(best) and best["probes_per_s"] >= 10000, note))
        common = [n for n in {r["n"] for r in sc["backstop"] if r["keeps_up"]}
                  if any(b["n"] == n and b["keeps_up"] for b in sc.get("blackbox", []))]
        if common:
            n = max(common)
            b = next(r for r in sc["backstop"] if r["n"] == n)
            x = next(r for r in sc["blackbox"] if r["n"] == n)
            ratio = b["cpu_s_per_10k"] / x["cpu_s_per_10k"]
            out.append(("CPU per probe vs blackbox_exporter", "≤ 0.5 ×",
                        f"{ratio:.2f} × at N={n} ({f(b['cpu_s_per_10k'], 2)} vs "
                        f"{f(x['cpu_s_per_10k'], 2)} CPU-s per 10,000 probes; blackbox_exporter "
                        f"alone, Prometheus not counted)", ratio <= 0.5, ""))
        else:
            out.append(("CPU per probe vs blackbox_exporter", "≤ 0.5 ×", "no common N",
                        None, ""))
    else:
        out.append(("checks/s", "≥ 10,000", "not run", None, ""))
        out.append(("CPU per probe vs blackbox_exporter", "≤ 0.5 ×", "not run", None, ""))
    if fp:
        i = fp["idle_10"]
        out.append(("idle resident memory, 10 watches", "< 15 MB",
                    f"{i['rss_kb'] / MB:.1f} MB ({f(i['rss_kb'])} kB)",
                    i["rss_kb"] < 15 * MB, ""))
    else:
        out.append(("idle resident memory, 10 watches", "< 15 MB", "not run", None, ""))
    out += report_scale.targets(sc, fp)
    out += report_quality.targets(q)
    out += report_failover.targets(fo)
    return out


# ---------------------------------------------------------------------------------------------
# sections


def stat_row(name, settings, s, unit="s", d=3):
    return (f"| {name} | {settings} | {s['n']} | {f(s['median'], d)} | {f(s['p95'], d)} | "
            f"{f(s['min'], d)} | {f(s['max'], d)} |")


def rollback_section(rb):
    if not rb:
        return ["## 1. Time to rollback", "", "Not run.", ""]
    ps = rb["pipeline_settings"]
    out = [
        "## 1. Time to rollback",
        "",
        "Seconds from the bad deployment's creation to the creation of the rollback deployment, "
        "both timestamps taken by the simulated deployment API. Same simulated service and API "
        "for both sides, rounds one after the other, a random 0–1 s pause before each bad "
        "deployment; each round starts from a good release the side has seen healthy. "
        "The bad release's /health answers 503 from 300 ms after its deployment is created.",
        "",
        "| side | settings | n | median | p95 | min | max |",
        "|---|---|---|---|---|---|---|",
        stat_row("backstop", "http check on /health, interval 1s, failure_limit 3, warmup 0s; "
                 "announced by POST /v1/deployments right after the deploy call",
                 rb["backstop_stats"]),
        stat_row("Prometheus + Alertmanager + webhook",
                 f"blackbox http probe of /health, scrape {ps['scrape_interval']} (timeout "
                 f"{ps['scrape_timeout']}), evaluation {ps['evaluation_interval']}, "
                 f"`probe_success == 0` for {ps['for']}; group_wait {ps['group_wait']}, "
                 f"group_interval {ps['group_interval']}, repeat_interval "
                 f"{ps['repeat_interval']}", rb["pipeline_stats"]),
        "",
        f"**Ratio pipeline / backstop: {rb['ratio_median']:.2f} × at the median, "
        f"{rb['ratio_p95']:.2f} × at p95.**",
        "",
        "Where the time goes:",
        "",
        "| part | n | median ms | p95 ms | min ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    b = rb["backstop"]
    p = rb["pipeline"]
    from common import median, quantile  # noqa: PLC0415

    def row(name, xs):
        return (f"| {name} | {len(xs)} | {f(median(xs))} | {f(quantile(xs, 0.95))} | "
                f"{f(min(xs))} | {f(max(xs))} |")

    out += [
        row("backstop: condemning sample → deploy call (**overhead**)",
            [r["overhead_ms"] for r in b]),
        row("backstop: condemning sample → verdict recorded",
            [r["sample_to_decision_ms"] for r in b]),
        row("backstop: verdict recorded → deploy call", [r["decision_to_call_ms"] for r in b]),
        row("pipeline: alert firing (Prometheus evaluation time) → deploy call",
            [r["fired_to_call_ms"] for r in p]),
        row("pipeline: alert firing → webhook received", [r["fired_to_receiver_ms"] for r in p]),
        row("pipeline: webhook received → deploy call", [r["receiver_to_call_ms"] for r in p]),
        "",
        "backstop samples on a schedule anchored at the announced deployment (first sample at "
        "once, with warmup 0s: it still sees the old release, which is live for another 300 ms), "
        "so it condemns at the third failed sample, 3 intervals after the deployment, every "
        "time. The pipeline's scrape and evaluation cycles are not aligned with the deployment; "
        "the alert turns pending at the first evaluation that sees a failed probe and fires "
        f"{ps['for']} later, i.e. on the fourth failed evaluation.",
        "",
        f"Alertmanager notified the receiver again for an alert it had already acted on "
        f"{rb.get('pipeline_duplicate_notifications', 0)} time(s) (the receiver ignores repeats).",
        "",
    ]
    d = rb.get("defaults")
    if d:
        dps = d["pipeline_settings"]
        ds = "defaults: no timing key set (warmup 15s, interval 10s, fast_interval 2s for 2m, " \
             "failure_limit 3 over ≥ 4s, window 10m); /health http check + 5xx-ratio scrape check"
        out += [
            "### Each side's documented defaults",
            "",
            f"{d['k']} services per side (one `backstop simulate` each), in parallel, bad "
            "deployments staggered uniformly over 15 s; backstop had verified no release, so it "
            "rolled back to the newest other successful deployment the API listed (the "
            "documented fallback). backstop watches each service with the checks a user writes "
            "first: `/health`, and the ratio of 5xx responses to all responses read from the "
            "service's own `/metrics` (`max = 0.05`), every timing key left out.",
            "",
            "| side | scenario | settings | n | median | p95 | min | max |",
            "|---|---|---|---|---|---|---|---|",
            stat_row("backstop", ds, d["backstop_stats"]).replace(
                "| backstop |", "| backstop | /health fails from the start |", 1),
            stat_row("backstop", ds, d.get("error_spike_stats", {"n": 0})).replace(
                "| backstop |", "| backstop | errors spike (25%), /health passes |", 1),
            stat_row("Prometheus + Alertmanager + webhook",
                     f"scrape/evaluation {dps.get('scrape_interval')} (the shipped "
                     f"prometheus.yml; the built-in default is 1m), `for: {dps.get('for')}` "
                     f"(= 3 × scrape interval), group_wait {dps.get('group_wait')}, "
                     f"group_interval {dps.get('group_interval')}, repeat_interval "
                     f"{dps.get('repeat_interval')}", d["pipeline_stats"]).replace(
                "| Prometheus + Alertmanager + webhook |",
                "| Prometheus + Alertmanager + webhook | /health fails from the start |", 1),
            "",
        ]
        if d.get("ratio_median"):
            out += [f"Ratio pipeline / backstop at the median (/health fails from the start): "
                    f"{d['ratio_median']:.2f} ×. backstop is told of each deployment once it is "
                    "done (0.3 s after its creation, as a pipeline announces after its deploy "
                    "step); its figure is then 0.3 s + warmup + (failure_limit − 1) × "
                    "fast_interval = 0.3 + 15 + 4 s (the release never passes /health, so "
                    "judging starts when warmup ends); the pipeline's is scrape phase + "
                    "evaluation phase + `for` + group_wait.", ""]
        by = {}
        for r in d.get("error_spike", []):
            by[r.get("condemned_by")] = by.get(r.get("condemned_by"), 0) + 1
        if by:
            out += ["Error spikes: /health passes at once, so judging starts at the first "
                    "round (readiness); condemned by " + ", ".join(
                        f"{k} {v}×" for k, v in sorted(by.items(), key=str)) + ".", ""]
        if d.get("noisy_deployments"):
            out += [f"**Noisy good releases (one failed /health in three, 1% errors): "
                    f"{d['noisy_false_rollbacks']} rolled back out of "
                    f"{d['noisy_deployments']}** (verdicts: " + ", ".join(
                        f"{k} {v}" for k, v in sorted(d["noisy_verdicts"].items())) + ").", ""]
        if d.get("errors"):
            out += ["Errors: " + "; ".join(d["errors"]), ""]
    out += ["Raw rounds (seconds to rollback; backstop overhead in ms):", "", "```"]
    out.append("backstop  " + " ".join(f"{r['time_to_rollback_s']:.3f}" for r in b))
    out.append("overhead  " + " ".join(f"{r['overhead_ms']:.1f}" for r in b))
    out.append("pipeline  " + " ".join(f"{r['time_to_rollback_s']:.3f}" for r in p))
    if d:
        out.append("defaults backstop  " + " ".join(
            f"{r['time_to_rollback_s']:.2f}" for r in d["backstop"]))
        out.append("defaults pipeline  " + " ".join(
            f"{r['time_to_rollback_s']:.2f}" for r in d["pipeline"]))
        out.append("defaults backstop error spike  " + " ".join(
            f"{r['time_to_rollback_s']:.2f}" for r in d.get("error_spike", [])))
    out += ["```", ""]
    return out


def scale_table(rows):
    out = [
        "| system | N watches | checks/s wanted | probes/s done | ok probes/s | CPU cores | "
        "CPU-s per 10k probes | jitter p50 / p99 ms | behind schedule p99 ms | "
        "scheduler lag ms | RSS MB | errors in window | keeps up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["system"] == "backstop":
            ok = r.get("ok_probes_per_s")
            extra = f"{f(werr(r), 0)}"
            behind = f(r.get("behind_p99_ms"))
            sched = f(r.get("scheduler_lag_ms"), 0)
            cpu = f(r["cpu_s_per_10k"], 2)
            name = {"-tmpfs": "backstop, state on tmpfs", "-repeat": "backstop (repeat)"}.get(
                r.get("tag", ""), "backstop")
        else:
            ok = r["ok_probes_per_s"]
            extra = f"{f(r['probes_succeeded_tsdb'] and r['scrapes_attempted_tsdb'] - r['probes_succeeded_tsdb'], 0)}"
            behind = sched = "—"
            cpu = (f"{f(r['cpu_s_per_10k'], 2)} (+Prometheus: "
                   f"{f(r['with_prometheus_cpu_s_per_10k'], 2)})")
            name = "blackbox_exporter"
        out.append(
            f"| {name} | {f(r['n'])} | {f(r['expected_per_s'])} | {f(r['probes_per_s'], 0)} | "
            f"{f(ok, 0)} | {f(r['cpu_cores'], 2)} | {cpu} | {f(r.get('jitter_p50_ms'))} / "
            f"{f(r.get('jitter_p99_ms'))} | {behind} | {sched} | {f(r['rss_max_kb'] / MB)} | {extra} | "
            f"{'yes' if r['keeps_up'] else '**no**'} |")
    return out


def scale_section(sc):
    if not sc:
        return ["## 2. Check engine cost and scale", "", "Not run.", ""]
    out = [
        "## 2. Check engine cost and scale",
        "",
        f"N watches × 3 http checks at 1 s against one local nginx (`return 200`, access log "
        f"off, {sc.get('nginx_workers', 1)} worker(s)); blackbox_exporter probing the same 3N URLs, scraped by Prometheus "
        f"at 1 s (scrape_timeout 800ms, the same as backstop's default check timeout). "
        f"backstop's deployments are announced spread over one second (as Prometheus spreads "
        f"its targets). Each step: start, {sc['warm_s']} s to settle, read the counters, "
        f"then a {sc['window_s']} s window for the lag figures that opens 2 s later (so that "
        f"reading the counters cannot delay its rounds). CPU from /proc/PID/stat (utime+stime, the prober process "
        f"only), probes from backstop's `backstop_checks_total` (cross-checked with the rounds "
        f"of every watch in /v1/status × 3) and Prometheus' "
        f"`prometheus_target_interval_length_seconds_count`; ok probes for blackbox from the "
        f"TSDB (`sum_over_time(probe_success[window])`). Jitter = interval between consecutive "
        f"rounds − 1 s (backstop: from the `at` of the samples in `GET /v1/watches/{{name}}`, "
        f"fetched after the window for up to {sc.get('lag_sample_most', 'all')} watches "
        f"spread evenly over the N; Prometheus: its "
        f"own `prometheus_target_interval_length_seconds` quantiles). backstop's 'behind "
        f"schedule' = sample time − (judging_from + k × 1 s), which includes the probe's own "
        f"latency and grows when rounds slip. Scheduler lag = backstop's own "
        f"`backstop_scheduler_lag_seconds` at the end of the window (the worst lateness of its "
        f"timers over the last 60 s, which includes the step's start-up). A step keeps up when it does ≥ "
        f"{sc['keep_up_ratio'] * 100:.0f}% of the wanted probes, all of them ok, with jitter "
        f"p99 < {sc['lag_limit_ms']:.0f} ms.",
        "",
        *scale_table(sc["backstop"] + sc.get("repeats", []) + sc.get("diagnosis", [])
                     + sc.get("blackbox", [])),
        "",
    ]
    odd = [r for r in sc["backstop"] + sc.get("loaded", [])
           if r.get("probes_source", "backstop_checks_total") != "backstop_checks_total"]
    if odd:
        ns = ", ".join(f"{n:,}" for n in sorted({r["n"] for r in odd}))
        out += [f"**`backstop_checks_total` did not move** at N = {ns} although rounds were "
                f"done (a daemon bug): probes/s there are the rounds of /v1/status × 3, and "
                f"errors in window the error samples of the sampled watches only.", ""]
    pairs = []
    for b in sc["backstop"]:
        x = next((r for r in sc.get("blackbox", []) if r["n"] == b["n"]), None)
        if x and b["cpu_s_per_10k"] and x["cpu_s_per_10k"]:
            pairs.append(f"N={b['n']}: {b['cpu_s_per_10k'] / x['cpu_s_per_10k']:.2f} × "
                         f"({'both keep up' if b['keeps_up'] and x['keeps_up'] else 'not both keeping up'})")
    if pairs:
        out += ["CPU per probe, backstop / blackbox_exporter: " + "; ".join(pairs) + ".", ""]
    out += report_scale.highest_line(sc)
    out += report_scale.load_table(sc)
    out += report_scale.api_table(sc)
    return out


def footprint_section(fp):
    if not fp:
        return ["## 3. Footprint", "", "Not run.", ""]
    r10, r1k = fp["ready_10"], fp["ready_1000"]
    i10, i1k = fp["idle_10"], fp["idle_1000"]
    o1k = fp["observing_1000"]
    o10 = fp.get("observing_10")
    ref = fp.get("references", {})
    rows = [
        ("10 watches × 3 checks, idle (nothing deployed)", i10["rss_kb"], i10["cpu_percent"],
         f"{i10['threads']} threads"),
        ("1,000 watches × 3 checks, idle", i1k["rss_kb"], i1k["cpu_percent"],
         f"{i1k['threads']} threads"),
    ]
    if o10:
        rows.append(("10 watches × 3 checks, observing at 1 s", o10["rss_max_kb"],
                     o10["cpu_cores"] * 100, f"{f(o10['probes_per_s'], 0)} probes/s"))
    rows.append(("1,000 watches × 3 checks, observing at 1 s", o1k["rss_max_kb"],
                 o1k["cpu_cores"] * 100, f"{f(o1k['probes_per_s'], 0)} probes/s"))
    out = [
        "## 3. Footprint",
        "",
        "| state | RSS MB | CPU % of one core | |",
        "|---|---|---|---|",
        *[f"| {a} | {b / MB:.1f} | {c:.2f} | {d} |" for a, b, c, d in rows],
        "",
        f"For scale: blackbox_exporter idle {f(ref.get('blackbox_idle_rss_kb', 0) / MB)} MB, "
        f"Prometheus idle (one target) {f(ref.get('prometheus_idle_rss_kb', 0) / MB)} MB.",
        "",
        "Start to ready (fresh state directory; READY=1 on a NOTIFY_SOCKET the benchmark owns, "
        "and the first 200 from /healthz):",
        "",
        "| config | READY=1 median | /healthz 200 median | slowest READY=1 | stop (SIGTERM → exit) |",
        "|---|---|---|---|---|",
    ]
    from common import median  # noqa: PLC0415
    for r in (r10, r1k):
        out.append(f"| {r['n']} watches × 3 checks | {r['ready_median_s'] * 1000:.1f} ms | "
                   f"{r['healthz_median_s'] * 1000:.1f} ms | {r['ready_max_s'] * 1000:.1f} ms | "
                   f"{median([x['stop_s'] for x in r['reps']]) * 1000:.1f} ms |")
    out += [
        "",
        f"backstop's own /metrics: {f(i10['metrics_lines'])} series ({f(i10['metrics_bytes'] / 1e3)} kB "
        f"per scrape) with 10 watches, {f(i1k['metrics_lines'])} series "
        f"({f(i1k['metrics_bytes'] / 1e6)} MB per scrape) with 1,000. Largest families at 1,000 "
        "watches: " + ", ".join(f"`{n}` {c:,}" for n, c in i1k.get("series_by_family", [])[:5]) + ".",
        "",
    ]
    out += report_scale.per_watch_line(fp)
    h = fp.get("heap_1000")
    if h and h.get("sites"):
        out += [
            f"Heap of the daemon with 1,000 idle watches × 3 checks (valgrind massif, peak "
            f"{h['heap_peak_bytes'] / 1e6:.1f} MB at the end of start-up), largest allocation "
            "sites:",
            "",
            "| share | MB | allocated in | on behalf of |",
            "|---|---|---|---|",
            *[f"| {pct:.1f}% | {b / 1e6:.2f} | `{site[:90]}` | `{(owner or '—')[:70]}` |"
              for pct, b, site, owner in h["sites"]],
            "",
        ]
    return out


def missed_section(tg, rb, sc, fp, outdir):
    missed = [t for t in tg if t[3] is False]
    out = ["## Targets missed: why, and where the time goes", ""]
    if not missed:
        return out + ["None of the targets measured in this run was missed.", ""]
    for name, req, measured, _, _ in missed:
        out += [f"### {name}: {measured} (target {req})", ""]
        scale_why = report_scale.why(name, sc, fp)
        checks_missed = any(t[0].startswith("checks/s on this") for t in missed)
        if (name.startswith("highest load") and sc and not checks_missed
                and any(not r["keeps_up"] for r in sc["backstop"])):
            # the first N that does not keep up, with its profile and the tmpfs rerun
            out += checks_why(sc, outdir)
        elif scale_why:
            out += scale_why
        elif name.startswith("checks/s") and sc:
            out += checks_why(sc, outdir)
        elif name.startswith("CPU per probe") and sc:
            b = max(sc["backstop"], key=lambda r: r["n"] if r["keeps_up"] else 0)
            out += [f"Profile of backstop at N={b['n']}:", "", "```",
                    *top_lines(b.get("profile"), 25), "```", ""]
        elif name.startswith("backstop overhead") and rb:
            out += ["See the breakdown in section 1 (sample → verdict, verdict → deploy call).",
                    ""]
        elif name.startswith("failover"):
            out += ["See section 5 (every round, its phase and times).", ""]
        elif name.startswith("detection"):
            out += ["See section 4, \"Where the targets are missed, and why\".", ""]
        elif name.startswith("idle resident") and fp:
            out += ["Largest metric families with 10 watches: " + ", ".join(
                f"`{n}` {c}" for n, c in fp["idle_10"].get("series_by_family", [])[:5]), ""]
    return out


def share(states, prefix):
    acts = (states or {}).get("tokio-rt-worker", {})
    return sum(v for k, v in acts.items() if k.startswith(prefix) or prefix in k)


def step_facts(r):
    per_round_kb = r["disk_write_kb_per_s"] / max(r.get("rounds_per_s", r["probes_per_s"] / 3), 1)
    return (f"The process used {r['cpu_cores']:.2f} of 2 cores (user {r['cpu_user_s']:.1f} s, "
            f"system {r['cpu_sys_s']:.1f} s in {r['window_s']:.0f} s), issued "
            f"{r['write_syscalls_per_s']:,.0f} write system calls/s and wrote "
            f"{r['disk_write_kb_per_s'] / 1024:,.1f} MB/s to disk: {per_round_kb:,.1f} kB per "
            f"observation round (a passing round is written every 18th round; a round of a run "
            f"of failures or errors, every round).")


def interference_facts(r):
    i = r.get("interference")
    if not i:
        return []
    if r.get("api"):
        a = r["api"]
        reads = (f"/metrics {1 + a['metrics_fetches']} times ({a['metrics_bytes'] / 1e6:.1f} MB, "
                 f"first {a['metrics_first_ms']:.0f} ms, then {a['metrics_mean_ms']:.0f} ms on "
                 f"average; rendered on a blocking thread), every /v1/status page "
                 f"({a['status_pages']}, {a['status_walk_ms']:.0f} ms in all) and one watch's "
                 f"detail")
        when = "during those reads and the 1.5 s after them"
    else:  # older results: one /metrics and one /v1/status, on the worker threads
        reads = (f"/metrics ({r['metrics_bytes'] / 1e6:.1f} MB, {r['metrics_fetch_ms']:.0f} ms) "
                 f"then /v1/status ({r['status_fetch_s'] * 1000:.0f} ms), both rendered on the "
                 f"same worker threads as the rounds")
        when = "of the next ~2 s"
    return [f"Reading backstop's API under this load — {reads} — made "
            f"{i.get('late_rounds_50ms', 0):,} of the {i.get('rounds_in_window', 0):,} rounds "
            f"{when} more than 50 ms late (max {f(i.get('jitter_max_ms'))} ms; rounds of the "
            f"watches whose samples are read).", ""]


def analysis(sc, r):
    """Thread states, perf and the tmpfs comparison for step r."""
    out = []
    diag = [d for d in sc.get("diagnosis", []) if d["n"] == r["n"]]
    d = diag[-1] if diag else None
    if d:
        out += [
            f"The same N with `[state] dir` on tmpfs (the same writes, but fsync costs "
            f"nothing): {d['probes_per_s']:,.0f} probes/s, {werr(d):,.0f} errors, jitter p99 "
            f"{f(d.get('jitter_p99_ms'))} ms (max {f(d.get('jitter_max_ms'))} ms), "
            f"{d['cpu_cores']:.2f} cores, {f(d['cpu_s_per_10k'], 2)} CPU-s per 10k probes"
            f" (on disk: {r['cpu_cores']:.2f} cores, {f(r['cpu_s_per_10k'], 2)}).",
            "",
        ]
        if r.get("thread_states") and d.get("thread_states"):
            out += [
                f"Wall-clock, the two tokio workers with the state on disk waited for work in "
                f"epoll {share(r['thread_states'], 'epoll') * 100:.0f}% of the samples, were "
                f"blocked in fsync {share(r['thread_states'], 'fsync') * 100:.0f}% and on a "
                f"futex {share(r['thread_states'], 'futex') * 100:.0f}%; with the state on "
                f"tmpfs they waited in epoll {share(d['thread_states'], 'epoll') * 100:.0f}% "
                f"of the time — that idle share is the headroom the disk-backed store uses up.",
                "",
            ]
    for x in [r] + ([d] if d else []):
        label = "state on tmpfs" if x is d else "state on disk"
        if x.get("thread_states"):
            out += [f"Thread states at N={x['n']:,} ({label}), sampled at 200 Hz for 4 s from "
                    "/proc/PID/task/*/{stat,syscall} (running = on a CPU or runnable; S = "
                    "sleeping; D = uninterruptible I/O; the sampler itself competes for the 2 "
                    "CPUs):", "", "```"]
            for th, acts in x["thread_states"].items():
                out.append(f"{th:18} " + ", ".join(f"{k} {v * 100:.0f}%"
                                                   for k, v in list(acts.items())[:6]))
            out += ["```", ""]
        if x.get("profile"):
            out += [f"perf (cpu-clock, 499 Hz, 8 s) at N={x['n']:,} ({label}), self time by "
                    f"symbol (full reports: `bench/results/{os.path.basename(x['profile'])}`, "
                    "and `-callers.txt` for inclusive time):", "", "```",
                    *[" ".join(line.split()).replace(" - -", "")
                      for line in top_lines(x["profile"], 16)], "```", ""]
            callers = x["profile"].replace(".txt", "-callers.txt")
            if os.path.exists(callers):
                lines = [" ".join(y.split()).replace(" - -", "") for y in top_lines(callers, 80)]
                keep = [y for y in lines if any(k in y for k in (
                    "fsync", "sqlite", "rusqlite", "serde_json", "save_observation", "Store",
                    "publish", "futex_wait", "reqwest", "hyper", "round"))][:12]
                if keep:
                    out += ["Inclusive time of the relevant frames (children included):", "",
                            "```", *keep, "```", ""]
    return out


STORE_WHY = (
    "Every round of every observation persists the whole observation "
    "(`Store::save_observation` from `engine/watch.rs::round`: the tracker with up to 20 samples "
    "per check, serialised to JSON) in its own SQLite transaction with `synchronous=FULL` — a "
    "WAL append and an fsync per watch per interval — under the store's single "
    "`Mutex<Connection>`, called synchronously on the tokio worker threads. When the workers "
    "run out of slack (those writes, plus anything else: another process on the 2 CPUs, a "
    "large API response), responses already received wait to be processed and rounds slip; "
    "a request kept waiting past its 800 ms timeout is recorded as a check *error* against the "
    "target, and `error_limit` such errors in a row make a healthy release inconclusive.")


def checks_why(sc, outdir):
    out = []
    bs = sc["backstop"]
    fail = next((r for r in bs if not r["keeps_up"]), None)
    reps = sc.get("repeats") or []
    if not fail:
        return ["backstop kept up at every load tried; the load needed for 10,000 checks/s "
                "(N ≥ 3,334) was not reached in this mode.", ""]
    out += [
        f"At N={fail['n']:,} ({fail['expected_per_s']:,} checks/s wanted) backstop did "
        f"{fail['probes_per_s']:,.0f} probes/s with jitter p99 {f(fail.get('jitter_p99_ms'))} ms "
        f"(max {f(fail.get('jitter_max_ms'))} ms) and {werr(fail):,.0f} error samples in the "
        f"window" + (
            f" — timeouts (800 ms) against an nginx that answers in about a millisecond, i.e. "
            f"backstop's own stalls, counted against the target "
            f"({fail['verdicts'].get('inconclusive', 0):,.0f} healthy releases inconclusive by "
            f"the end of the step). " if werr(fail) else ". ") + step_facts(fail),
        "",
    ]
    for r in reps:
        out += [f"Repeat of the same step: {r['probes_per_s']:,.0f} probes/s, jitter p99 "
                f"{f(r.get('jitter_p99_ms'))} ms (max {f(r.get('jitter_max_ms'))} ms), "
                f"{werr(r):,.0f} errors — {'keeps up' if r['keeps_up'] else 'does not keep up'}.",
                ""]
    out += interference_facts(fail)
    out += analysis(sc, fail)
    diag = [d for d in sc.get("diagnosis", []) if d["n"] == fail["n"]]
    if diag and diag[-1]["keeps_up"]:
        out += ["So the probing engine sustains the load; the state store is what limits it. " +
                STORE_WHY, ""]
    return out


def headroom_section(sc):
    """At the top of the ladder when it kept up: how close to the edge it ran."""
    if not sc or not sc.get("backstop"):
        return []
    top = max(sc["backstop"], key=lambda r: r["n"])
    if not top["keeps_up"] or not any(d["n"] == top["n"] for d in sc.get("diagnosis", [])):
        return []
    out = [f"## Headroom at the highest load (N={top['n']:,}, "
           f"{top['expected_per_s']:,} checks/s)", "",
           f"backstop kept up: {top['probes_per_s']:,.0f} probes/s, jitter p99 "
           f"{f(top.get('jitter_p99_ms'))} ms (max {f(top.get('jitter_max_ms'))} ms), behind "
           f"schedule p99 {f(top.get('behind_p99_ms'))} ms, {werr(top):,.0f} errors. "
           + step_facts(top), ""]
    out += interference_facts(top)
    out += analysis(sc, top)
    out += ["What uses the headroom: " + STORE_WHY, ""]
    return out


def commands_section(outdir, cmdline):
    out = ["## Exact commands", "", "```sh", cmdline or "bench/run.sh", "```", "",
           "Every process the benchmark started (one per kind; N varies in the scale steps). "
           "The configuration files are in `bench/results/configs/`.", "", "```"]
    try:
        with open(os.path.join(outdir, "commands.json")) as fh:
            cmds = json.load(fh)
    except (OSError, ValueError):
        cmds = {}
    import re  # noqa: PLC0415
    seen = set()
    for name, argv in sorted(cmds.items(), key=lambda kv: (len(kv[0]), kv[0])):
        kind = re.sub(r"(-?\d+)+(-tmpfs|-loaded)?$", "", name)
        if kind in seen:
            continue
        seen.add(kind)
        out.append(f"# {name}")
        out.append(" ".join(argv))
    out += ["```", ""]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--command", default="")
    args = ap.parse_args()
    rb = load(args.outdir, "rollback")
    sc = load(args.outdir, "scale")
    fp = load(args.outdir, "footprint")
    q = load(args.outdir, "quality")
    fo = load(args.outdir, "failover")
    tg = targets(rb, sc, fp, q, fo)
    metas = [load(args.outdir, f"meta-{b}") for b in "12345"]
    modes = {m["quick"] for m in metas if m}
    out = [
        "# backstop benchmarks: results",
        "",
        "Generated by `bench/run.sh` (see `bench/README.md`); rerun everything with "
        "`bench/run.sh`, or `bench/run.sh --quick`. Raw numbers: `bench/results/*.json`.",
        "",
    ]
    if True in modes:
        out += ["**Quick mode**: fewer rounds, fewer and shorter scale steps, no documented-"
                "defaults comparison, 2,000 generated deployments instead of 10,000; use the "
                "full run for the record.", ""]
    out += [
        "## Targets",
        "",
        "| target | required | measured | met |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c}{' ' + e if e else ''} | "
          f"{'yes' if d else ('**no**' if d is False else '—')} |" for a, b, c, d, e in tg],
        "",
        "## Machine and versions",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine(args.binary,
                                                  previous_row(args.out, "backstop"))],
        "",
        "## Conditions",
        "",
        *conditions(args.outdir),
        *rollback_section(rb),
        *scale_section(sc),
        *footprint_section(fp),
        *report_quality.section(q),
        *report_failover.section(fo),
        *missed_section(tg, rb, sc, fp, args.outdir),
        *headroom_section(sc),
        *commands_section(args.outdir, args.command),
    ]
    with open(args.out, "w") as fh:
        fh.write("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
