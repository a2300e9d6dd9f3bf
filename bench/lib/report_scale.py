"""RESULTS.md parts for issue 13's scale contract: quiet and with one core kept busy side by
side, the highest N that keeps up, what reading the API costs, and memory per watch.

Called by report.py; reads bench/results/scale.json and footprint.json."""

MB = 1_000_000 / 1024  # kB per MB (decimal megabytes)
TARGET_CHECKS = 10_000
TARGET_CHECKS_QUIET = 20_000
METRICS_MAX_MB = 2.5
METRICS_MAX_MS = 20
STATUS_PAGE_MAX_MS = 20
IDLE_WATCH_MAX_KB = 20


def f(x, d=1):
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.{d}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def werr(r):
    return r.get("window_errors", r.get("errors_total", 0))


def quiet(sc):
    return [r for r in (sc or {}).get("backstop", []) if r.get("load", "quiet") == "quiet"]


def highest(rows):
    """The step of most checks/s among those that keep up, or None."""
    ok = [r for r in rows if r["keeps_up"]]
    return max(ok, key=lambda r: r["probes_per_s"]) if ok else None


def step_brief(r):
    return (f"N={r['n']:,}: {f(r['probes_per_s'], 0)}/s of {r['expected_per_s']:,}, jitter p99 "
            f"{f(r.get('jitter_p99_ms'))} ms, {f(werr(r), 0)} errors"
            + ("" if r["keeps_up"] else " (does not keep up)"))


def api_at(sc, n):
    """The API costs measured in the quiet step at N=n, or None."""
    r = next((x for x in quiet(sc) if x["n"] == n and x.get("api")), None)
    return r["api"] if r else None


def per_watch(fp):
    """(idle kB per watch, observing kB per watch, n) from benchmark 3, or None."""
    if not fp or "idle_10" not in fp or "idle_1000" not in fp:
        return None
    i10, i1k = fp["idle_10"], fp["idle_1000"]
    n = i1k.get("n", 1000)
    idle = (i1k["rss_kb"] - i10["rss_kb"]) / (n - 10)
    o = fp.get("observing_1000")
    obs = (o["rss_max_kb"] - i10["rss_kb"]) / (n - 10) if o else None
    return idle, obs, n


def targets(sc, fp):
    """Rows for the targets table: [(target, required, measured, met, note)]."""
    out = []
    target_n = (sc or {}).get("target_n", 3400)
    loaded = (sc or {}).get("loaded", [])
    if loaded:
        best = highest(loaded)
        measured = "; ".join(step_brief(r) for r in sorted(loaded, key=lambda r: r["n"]))
        cores = [r["stress_cores"] for r in loaded if r.get("stress_cores") is not None]
        if cores:
            measured += f" (stress-ng used {min(cores):.2f}–{max(cores):.2f} cores)"
        tried = max(r["expected_per_s"] for r in loaded)
        out.append(("checks/s with one core kept busy (`stress-ng --cpu 1`), jitter p99 < 50 ms",
                    f"≥ {TARGET_CHECKS:,}", measured,
                    bool(best) and best["probes_per_s"] >= TARGET_CHECKS,
                    "" if tried >= TARGET_CHECKS else f"(highest load tried: {tried:,}/s)"))
    else:
        out.append(("checks/s with one core kept busy (`stress-ng --cpu 1`), jitter p99 < 50 ms",
                    f"≥ {TARGET_CHECKS:,}", "not run", None, ""))
    q = quiet(sc)
    if q:
        best = highest(q)
        first_fail = next((r for r in sorted(q, key=lambda r: r["n"]) if not r["keeps_up"]),
                          None)
        measured = (f"N={best['n']:,}: {f(best['probes_per_s'], 0)} checks/s"
                    if best else "none kept up")
        if first_fail:
            measured += f"; first that does not: {step_brief(first_fail)}"
        else:
            measured += f"; every N tried kept up (highest tried: N={max(r['n'] for r in q):,})"
        out.append(("highest load that keeps up, quiet machine", f"≥ {TARGET_CHECKS_QUIET:,} "
                    "checks/s", measured,
                    bool(best) and best["probes_per_s"] >= TARGET_CHECKS_QUIET, ""))
    else:
        out.append(("highest load that keeps up, quiet machine",
                    f"≥ {TARGET_CHECKS_QUIET:,} checks/s", "not run", None, ""))
    a = api_at(sc, target_n)
    if a:
        mb = a["metrics_bytes"] / 1e6
        out.append((f"/metrics at {target_n:,} observing watches",
                    f"< {METRICS_MAX_MB} MB, < {METRICS_MAX_MS} ms",
                    f"{mb:.2f} MB, {f(a['metrics_mean_ms'])} ms (mean of "
                    f"{a['metrics_fetches']}; first {f(a['metrics_first_ms'])} ms)",
                    mb < METRICS_MAX_MB and a["metrics_mean_ms"] < METRICS_MAX_MS, ""))
        out.append((f"/v1/status page at {target_n:,} observing watches",
                    f"< {STATUS_PAGE_MAX_MS} ms",
                    f"first page ({a['status_first_page_watches']} watches) "
                    f"{f(a['status_first_page_ms'])} ms, slowest of {a['status_pages']} pages "
                    f"{f(a['status_page_max_ms'])} ms",
                    a["status_page_max_ms"] < STATUS_PAGE_MAX_MS, ""))
    else:
        done = [r["n"] for r in quiet(sc) if r.get("api")]
        note = f"(measured at N={', '.join(f'{n:,}' for n in sorted(done))}: section 2)" \
            if done else ""
        out.append((f"/metrics at {target_n:,} observing watches",
                    f"< {METRICS_MAX_MB} MB, < {METRICS_MAX_MS} ms", "not run", None, note))
        out.append((f"/v1/status page at {target_n:,} observing watches",
                    f"< {STATUS_PAGE_MAX_MS} ms", "not run", None, note))
    pw = per_watch(fp)
    if pw:
        idle, obs, n = pw
        out.append(("resident memory per idle watch (3 checks)", f"≤ {IDLE_WATCH_MAX_KB} kB",
                    f"{idle:.1f} kB (RSS at {n:,} − at 10, / {n - 10:,}); observing at 1 s: "
                    f"{f(obs)} kB", idle <= IDLE_WATCH_MAX_KB, ""))
    else:
        out.append(("resident memory per idle watch (3 checks)", f"≤ {IDLE_WATCH_MAX_KB} kB",
                    "not run", None, ""))
    return out


def load_table(sc):
    """Each N run with one core busy, beside the same N on the quiet machine."""
    loaded = sorted((sc or {}).get("loaded", []), key=lambda r: r["n"])
    if not loaded:
        return []
    out = [
        "### Quiet and with one core kept busy",
        "",
        "The same steps with `stress-ng --cpu 1` running from before the daemon starts until "
        "the window ends (it takes one of the 2 cores for the whole measurement).",
        "",
        "| N watches | checks/s wanted | load | probes/s done | jitter p50 / p99 ms | "
        "behind schedule p99 ms | scheduler lag ms | errors in window | backstop cores | "
        "stress-ng cores | keeps up |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_n = {r["n"]: r for r in quiet(sc)}
    for lr in loaded:
        for r in (by_n.get(lr["n"]), lr):
            if r is None:
                continue
            out.append(
                f"| {r['n']:,} | {r['expected_per_s']:,} | {r.get('load', 'quiet')} | "
                f"{f(r['probes_per_s'], 0)} | {f(r.get('jitter_p50_ms'))} / "
                f"{f(r.get('jitter_p99_ms'))} | {f(r.get('behind_p99_ms'))} | "
                f"{f(r.get('scheduler_lag_ms'), 0)} | {f(werr(r), 0)} | {f(r['cpu_cores'], 2)} | "
                f"{f(r.get('stress_cores'), 2)} | {'yes' if r['keeps_up'] else '**no**'} |")
    return out + [""]


def highest_line(sc):
    q = quiet(sc)
    if not q:
        return []
    best = highest(q)
    if not best:
        return ["**Highest N that keeps up (quiet): none.**", ""]
    top = max(q, key=lambda r: r["n"])
    return [f"**Highest N that keeps up, quiet: {best['n']:,} watches = "
            f"{f(best['probes_per_s'], 0)} checks/s** (target ≥ {TARGET_CHECKS_QUIET:,}; "
            f"highest N tried {top['n']:,}; nginx used {f(best.get('nginx_cpu_cores'), 2)} "
            f"cores ({sc.get('nginx_workers', 1)} worker processes) there).", ""]


def api_table(sc):
    rows = [r for r in quiet(sc) if r.get("api")]
    big = [r for r in rows if r["n"] >= 1000]
    rows = big or rows
    if not rows:
        return []
    out = [
        "### Reading the API while the watches observe",
        "",
        f"Right after each quiet step's window, one request at a time on a kept-alive "
        f"connection (client time, to the last byte): `/metrics` once, then "
        f"{rows[0]['api']['metrics_fetches']} more (their mean); `GET /v1/status` at its default "
        f"limit (the first page), then every page from the first to the last `next`; "
        f"`GET /v1/watches/{{name}}` (one watch, with its samples), median of 5. Targets at "
        f"{sc.get('target_n', 3400):,} watches: /metrics < {METRICS_MAX_MB} MB rendered in "
        f"< {METRICS_MAX_MS} ms, a status page < {STATUS_PAGE_MAX_MS} ms.",
        "",
        "| N watches | /metrics MB | /metrics first ms | /metrics mean ms (max) | "
        "/v1/status first page ms (watches) | all pages ms (pages, slowest ms) | "
        "/v1/watches/{name} ms | scheduler lag ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["n"]):
        a = r["api"]
        out.append(
            f"| {r['n']:,} | {a['metrics_bytes'] / 1e6:.2f} | {f(a['metrics_first_ms'])} | "
            f"{f(a['metrics_mean_ms'])} ({f(a['metrics_max_ms'])}) | "
            f"{f(a['status_first_page_ms'])} ({a['status_first_page_watches']:,}) | "
            f"{f(a['status_walk_ms'])} ({a['status_pages']}, {f(a['status_page_max_ms'])}) | "
            f"{f(a['watch_detail_median_ms'])} | {f(r.get('scheduler_lag_ms'), 0)} |")
    return out + [""]


def per_watch_line(fp):
    pw = per_watch(fp)
    if not pw:
        return []
    idle, obs, n = pw
    met = "met" if idle <= IDLE_WATCH_MAX_KB else "**missed**"
    return [f"**Resident memory per watch (3 checks): idle {idle:.1f} kB** (target ≤ "
            f"{IDLE_WATCH_MAX_KB} kB: {met}), **observing at 1 s {f(obs)} kB** — (RSS at "
            f"{n:,} − RSS at 10) / {n - 10:,}; observing: the highest RSS of {n:,} watches "
            f"observing (each check keeps its last 20 samples; they are full after the 20 s "
            f"settling of a full run), against 10 idle watches.", ""]


def why(name, sc, fp):
    """The lines under a missed target of this module in "Targets missed", or None."""
    if name.startswith("checks/s with one core"):
        rows = sorted((sc or {}).get("loaded", []), key=lambda r: r["n"])
        out = ["Section 2, \"Quiet and with one core kept busy\": the same N quiet and loaded."]
        for r in rows:
            if not r["keeps_up"]:
                out.append(f"At N={r['n']:,} with stress-ng on "
                           f"{f(r.get('stress_cores'), 2)} cores: backstop used "
                           f"{f(r['cpu_cores'], 2)} cores, jitter p99 "
                           f"{f(r.get('jitter_p99_ms'))} ms (max {f(r.get('jitter_max_ms'))} ms), "
                           f"behind schedule p99 {f(r.get('behind_p99_ms'))} ms, scheduler lag "
                           f"{f(r.get('scheduler_lag_ms'), 0)} ms, {f(werr(r), 0)} errors.")
        return [" ".join(out), ""]
    if name.startswith("highest load"):
        return ["See section 2: the quiet ladder stops at the first N that does not keep up "
                "(its row in the table, and its profile when one was taken, below).", ""]
    if name.startswith(("/metrics", "/v1/status")):
        return ["See section 2, \"Reading the API while the watches observe\".", ""]
    if name.startswith("resident memory per idle watch"):
        return ["See section 3: the heap profile of 1,000 idle watches (full run, with "
                "valgrind installed) shows where per-watch memory goes.", ""]
    return None
