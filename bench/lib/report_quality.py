"""Benchmark 4 (detection quality) in bench/RESULTS.md: its rows in the targets table and its
section, from bench/results/quality.json (written by `cargo bench --bench quality`).
"""

LABELS = {
    "backstop": "backstop, defaults",
    "backstop_compare": "backstop + `compare` on latency",
    "flagger": "Flagger-style",
    "argo": "Argo Rollouts-style",
    "kayenta": "Kayenta-style",
    "backstop_previous": "diagnostic: the example's checks before benchmark 4 (absolute `max = 0.05`, no `min_traffic`)",
    "backstop_1m": "diagnostic: + `compare` on latency, `min_failure_for = \"1m\"`",
    "backstop_compare_errors": "diagnostic: + `compare` on errors too",
    "kayenta_1m_step": "diagnostic: Kayenta-style with a 60 s step",
}
SHORT = {
    "backstop": "backstop",
    "backstop_compare": "backstop + compare",
    "flagger": "Flagger",
    "argo": "Argo",
    "kayenta": "Kayenta",
    "backstop_previous": "diag.: previous example",
    "backstop_1m": "diag.: compare, 1m",
    "backstop_compare_errors": "diag.: compare errors",
    "kayenta_1m_step": "diag.: Kayenta, 60 s step",
}
FIVE = ["backstop", "backstop_compare", "flagger", "argo", "kayenta"]
DIAGNOSTIC = ["backstop_previous", "backstop_1m", "backstop_compare_errors",
              "kayenta_1m_step"]
HEALTHY = [
    ("good", "good"),
    ("noisy_good", "noisy good"),
    ("low_traffic", "low traffic (< 1 req/s)"),
    ("telemetry_outage", "telemetry outage"),
    ("slow_start", "slow start (503 < warmup)"),
]
BAD = [
    ("errors_x1.2", "errors 1.2×"),
    ("errors_x1.5", "errors 1.5×"),
    ("errors_x2", "errors 2×"),
    ("errors_x5", "errors 5×"),
    ("latency_x1.2", "latency 1.2×"),
    ("latency_x1.5", "latency 1.5×"),
    ("latency_x2", "latency 2×"),
    ("latency_x5", "latency 5×"),
    ("gradual_errors", "errors, gradual to 3× over 10 m"),
    ("gradual_latency", "latency, gradual to 3× over 10 m"),
    ("partial_errors", "errors 5× on 1 of 4 instances"),
    ("partial_latency", "latency 5× on 1 of 4 instances"),
    ("dead_on_start", "dead on start"),
]
AXES = {"false_rollbacks": "false rollbacks", "recall_x1.5": "recall at 1.5×",
        "time_to_rollback": "time to rollback"}


def pct(x, d=1):
    return "—" if x is None else f"{x * 100:.{d}f}%"


def secs(x):
    return "—" if x is None else f"{x:.0f} s"


def cell(q, policy, scenario):
    return q["policies"][policy]["scenarios"].get(scenario, {})


def targets(q):
    """Rows for the targets table: (target, required, measured, met, note)."""
    name_fp = "detection: good and noisy-good releases rolled back, backstop defaults"
    name_recall = "detection: recall on ≥ 2× step regressions, backstop defaults"
    name_pareto = ("detection: Pareto-better than each alternative (false rollbacks, recall at "
                   "1.5×, time to rollback), backstop defaults")
    if not q:
        return [(n, r, "not run", None, "") for n, r in
                ((name_fp, "≤ 0.5%"), (name_recall, "≥ 99% each"), (name_pareto, "each"))]
    t = q["summary"]["targets"]
    b = q["summary"]["rows"]["backstop"]
    lo, hi = b["false_rollback_ci95"]
    n = q["policies"]["backstop"]["pooled"]["good_and_noisy"]["n"]
    k = q["policies"]["backstop"]["pooled"]["good_and_noisy"]["rolled_back"]
    rows = [(name_fp, "≤ 0.5%", f"{pct(b['false_rollback_rate'], 2)} ({k} of {n:,}; 95% CI "
             f"{pct(lo, 2)}–{pct(hi, 2)})", t["false_rollbacks"]["met"], "")]
    cells = ", ".join(f"{c['scenario'].replace('_x', ' ')}×: {pct(c['recall'])}"
                      for c in t["recall_2x_or_more"]["cells"])
    rows.append((name_recall, "≥ 99% each", cells, t["recall_2x_or_more"]["met"], ""))
    ours = [p for p in t["pareto"] if p["policy"] == "backstop"]
    measured = "; ".join(
        f"{LABELS[p['versus']]}: " + ("yes" if p["pareto_better"] else
                                      "no, worse on " + ", ".join(AXES.get(w, w) for w in p["worse_on"]))
        for p in ours)
    rows.append((name_pareto, "each", measured, all(p["pareto_better"] for p in ours), ""))
    return rows


def headline(q):
    rows = q["summary"]["rows"]
    common_n = q["policies"]["backstop"]["time_to_rollback_common_s"]["n"]
    out = [
        "| policy | false rollbacks, good + noisy good (95% CI) | recall, 1.5× steps | recall, "
        "≥ 2× steps | median time to rollback, over the bad releases it rolled back | median "
        f"time to rollback, over the {common_n:,} bad releases all five rolled back |",
        "|---|---|---|---|---|---|",
    ]
    for p in FIVE + DIAGNOSTIC:
        r = rows[p]
        lo, hi = r["false_rollback_ci95"]
        out.append(f"| {LABELS[p]} | {pct(r['false_rollback_rate'], 2)} ({pct(lo, 2)}–"
                   f"{pct(hi, 2)}) | {pct(r['recall_x1.5'])} | {pct(r['recall_2x_or_more'])} | "
                   f"{secs(r['median_time_to_rollback_s'])} | "
                   f"{secs(r['median_time_to_rollback_common_s'])} |")
    return out


def scenario_table(q, scenarios, title):
    cols = FIVE + DIAGNOSTIC
    out = [f"| {title} | n | " + " | ".join(SHORT[p] for p in cols) + " |",
           "|---|---|" + "---|" * len(cols)]
    for key, label in scenarios:
        n = cell(q, "backstop", key).get("n", 0)
        cells = []
        for p in cols:
            c = cell(q, p, key)
            med = c.get("time_to_rollback_s", {}).get("median")
            cells.append(pct(c.get("rate")) + (f" · {secs(med)}" if med is not None else ""))
        out.append(f"| {label} | {n:,} | " + " | ".join(cells) + " |")
    return out


def verdict_mix(q):
    out = ["| scenario | policy | verified | inconclusive (check) | rolled back (check) |",
           "|---|---|---|---|---|"]
    for key, label in HEALTHY + [("latency_x2", "latency 2×")]:
        for p in ("backstop", "backstop_compare"):
            c = cell(q, p, key)
            v = c.get("verdicts", {})
            inc = ", ".join(f"{k} {n}" for k, n in c.get("inconclusive_causes", {}).items())
            rb = ", ".join(f"{k} {n}" for k, n in c.get("causes", {}).items())
            out.append(f"| {label} | {LABELS[p]} | {v.get('verified', 0)} | "
                       f"{v.get('inconclusive', 0)}{f' ({inc})' if inc else ''} | "
                       f"{v.get('rolled_back', 0)}{f' ({rb})' if rb else ''} |")
    return out


def why(q):
    """Where backstop's defaults miss the targets, from the measurements."""
    rows = q["summary"]["rows"]
    t = q["summary"]["targets"]
    facts = q.get("facts", {})
    b = rows["backstop"]
    out = ["### Where the targets are missed, and why", ""]
    good = q["policies"]["backstop"]["pooled"]["good_and_noisy"]
    causes = ", ".join(f"{k} {n}" for k, n in good.get("causes", {}).items()) or "none"
    fp_met = t["false_rollbacks"]["met"]
    slow = rows["backstop_1m"]
    cmp_ = rows["backstop_compare"]
    out += [
        f"**False rollbacks** ({'met' if fp_met else 'missed'}: {pct(b['false_rollback_rate'], 2)} "
        f"of {good['n']:,} good and noisy-good releases; condemned by {causes}). Rounds 2 s "
        "apart of a Prometheus range query read almost the same 1-minute window (and the data "
        "behind it changes only when Prometheus scrapes an instance, every 15 s): three of "
        "them are one observation, and one 1-minute excursion of a low-count error ratio or a "
        "latency blip would condemn. So a Prometheus check's failure run must span half its "
        "query's look-back by default (30 s for `[1m]`: its last reading is at least half new "
        "data); http checks, scrapes and instant queries keep the 4 s confirmation (dead on "
        f"start: {secs(cell(q, 'backstop', 'dead_on_start').get('time_to_rollback_s', {}).get('median'))}). "
        "The whole window costs more detection time for fewer false rollbacks: the "
        "`min_failure_for = \"1m\"` row (with `compare` on latency) rolls back "
        f"{pct(slow['false_rollback_rate'], 2)} of healthy releases against "
        f"{pct(cmp_['false_rollback_rate'], 2)}, with a median time to rollback of "
        f"{secs(slow['median_time_to_rollback_common_s'])} against "
        f"{secs(cmp_['median_time_to_rollback_common_s'])} over the bad releases all five "
        "rolled back. The half window has its price too: a 5× latency regression is rolled "
        f"back at {secs(cell(q, 'backstop', 'latency_x5').get('time_to_rollback_s', {}).get('median'))} "
        "(20 s when three fast rounds in 4 s condemned, in this benchmark's first run), and "
        "a p90 hovering at its limit must stay over it for 30 s.",
        "",
    ]
    if good.get("rolled_back_within_lookback", 0):
        out += [
            f"{good.get('rolled_back_within_lookback', 0)} of those {good.get('rolled_back', 0)} "
            "were decided within the first 64 s, on samples whose 1-minute window still read the "
            "previous release. The look-back rule lets such a mixed sample fail when the previous "
            "release was verified, on the ground that old data only dilutes the new release's "
            "badness; it does not when the previous release had a blip of its own just before the "
            "deployment, nor for a ratio of rates across the restart: the old process's 5xx series "
            "goes stale at the restart and is extrapolated over a shorter span than the request "
            "series, so a few errors just before the deployment weigh several times their share.",
            "",
    ]
    lt = {p: cell(q, p, "low_traffic") for p in ("backstop", "backstop_previous")}
    out += [
        f"Not in the target: below 1 request per second the example's `min_traffic` makes "
        f"samples no data, and {pct(lt['backstop'].get('rate'))} of such healthy releases are "
        f"rolled back ({pct(lt['backstop_previous'].get('rate'))} with the previous example's "
        "checks, which had no `min_traffic`: one error among a few requests is a 10-50% error "
        "ratio for a minute). They are not verified either: with every sample no data, "
        "`min_samples` makes them inconclusive.",
        "",
    ]
    e2, e5 = facts.get("errors_x2", {}), facts.get("errors_x5", {})
    share = facts.get("error_share", {})
    rc = {c["scenario"]: c["recall"] for c in t["recall_2x_or_more"]["cells"]}
    ce = rows["backstop_compare_errors"]
    ce2 = cell(q, "backstop_compare_errors", "errors_x2")
    prev = {k: cell(q, "backstop_previous", k).get("rate") for k in ("errors_x2", "errors_x5")}
    out += [
        f"**Recall on error regressions** (2×: {pct(rc.get('errors_x2'))}, 5×: "
        f"{pct(rc.get('errors_x5'))}). The example's error check is now relative: at most 3× "
        "the share before the deployment, against a baseline of at least 1% "
        "(`baseline_floor = 0.01`, so never failing below 3%), beside the absolute 5% ceiling. "
        f"The generated services fail {pct(share.get('median'), 2)} of requests as usual "
        f"(10th–90th percentile {pct(share.get('p10'), 2)}–{pct(share.get('p90'), 2)}): a 2× "
        "regression is under any 3× rule by construction, and a 5× one reaches 3% only for "
        "services failing more than 0.6% before. The previous example's absolute ceiling "
        f"caught {pct(prev['errors_x2'])} and {pct(prev['errors_x5'])} (a 2× regression "
        f"crosses 5% in {pct(e2.get('above_5pct'))} of services, a 5× one in "
        f"{pct(e5.get('above_5pct'))}). A threshold on a share of a few errors per minute "
        "cannot be both tight and quiet; the comparison can: with `compare` on errors too "
        f"(diagnostic) backstop catches {pct(ce2.get('rate'))} of the 2× error regressions "
        f"and {pct(ce['recall_2x_or_more'])} of all ≥ 2× ones, at "
        f"{pct(ce['false_rollback_rate'], 2)} false rollbacks and a median "
        f"{secs(ce['median_time_to_rollback_s'])} (the test needs minutes of post-deployment "
        "points). The Flagger-, Argo- and Kayenta-style rows catch them because their "
        "thresholds are per service (twice the usual value) or relative, and pay for it in "
        "false rollbacks or time.",
        "",
    ]
    l2 = cell(q, "backstop", "latency_x2")
    l2c = cell(q, "backstop_compare", "latency_x2")
    inc2 = l2.get("verdicts", {}).get("inconclusive", 0)
    g = cell(q, "backstop", "good")
    gp = cell(q, "backstop_previous", "good")
    inc_g = g.get("verdicts", {}).get("inconclusive", 0) / max(g.get("n", 1), 1)
    inc_gp = gp.get("verdicts", {}).get("inconclusive", 0) / max(gp.get("n", 1), 1)
    out += [
        f"**Recall on 2× latency** ({pct(rc.get('latency_x2'))}; with `compare`, "
        f"{pct(l2c.get('rate'))}). `max_ratio = 2.0` sits exactly at the regression: the p90 "
        "of a release twice as slow hovers at the limit and fails only when noise keeps it "
        "over for a whole failure run, now 30 s of it. The comparison catches most of the "
        f"rest. Inconclusive verdicts: {inc2} of {l2.get('n', 0)} here, and "
        f"{pct(inc_g)} of good releases ({pct(inc_gp)} with the previous example's checks). "
        "Right after the restart the 5xx series does not exist until an instance's first "
        "error (client libraries create labelled series on first use), so the previous "
        "example's error ratio was an empty result, an error each round, and five errors at "
        "the 2 s fast cadence made the verdict inconclusive in 10 s, ending the observation "
        "while a latency failure was being confirmed. Now an error run must span `error_limit` "
        "rounds at `interval` (40 s) and waits while another check confirms a failure, and "
        "the example's query reads no 5xx series as 0 errors (`or vector(0)`).",
        "",
    ]
    out += [
        f"**`compare` on a count signal** (diagnostic): with the comparison on the error ratio "
        f"too, {pct(ce['false_rollback_rate'])} of healthy releases are rolled back (12.7% "
        "before backstop accounted for overlapping points). Each post-deployment point is a "
        "1-minute rate sampled every `step` (default: `interval`, 10 s), so neighbours share "
        "5/6 of their data: the test now weighs n such points as n · step / look-back "
        "independent ones (z divided by √6). The Kayenta-style row's "
        f"{pct(rows['kayenta']['false_rollback_rate'])} has mostly the same cause (a 10 s step "
        "on 1-minute rates, as Spinnaker's 50-points guidance implies for a 10-minute "
        "analysis): with a 60 s step, points that do not overlap, the same judge rolls back "
        f"{pct(rows['kayenta_1m_step']['false_rollback_rate'])} and still catches "
        f"{pct(rows['kayenta_1m_step']['recall_x1.5'])} of the 1.5× regressions. "
        "On latency (many requests per window) the test costs little: the "
        f"`compare` row's false rollbacks are {pct(rows['backstop_compare']['false_rollback_rate'], 2)}.",
        "",
    ]
    ours = [p for p in t["pareto"] if p["policy"] in ("backstop", "backstop_compare")]
    lines = []
    for p in ours:
        verdict = ("Pareto-better" if p["pareto_better"] else
                   "not Pareto-better: worse on " + ", ".join(AXES.get(w, w) for w in p["worse_on"]))
        lines.append(f"{LABELS[p['policy']]} vs {LABELS[p['versus']]}: {verdict}")
    out += ["**Pareto** (false rollbacks, recall at 1.5×, median time to rollback over the bad "
            "releases all five rolled back): " + "; ".join(lines) + ".", ""]
    return out


def section(q):
    if not q:
        return ["## 4. Detection quality", "", "Not run.", ""]
    m = q["meta"]
    out = [
        "## 4. Detection quality",
        "",
        f"{m['deployments']:,} generated deployments (seed {m['seed']}), each judged by every "
        f"policy on the same emulated telemetry, in {m['seconds']:.0f} s on {m['threads']} "
        "threads. backstop's rows replay each deployment through its real lifecycle core "
        "(`backstop::replay`, the daemon's `lifecycle::step`) with its configuration loaded "
        "from TOML as the daemon loads it; the other policies are written in the harness from "
        "their documented defaults. What is generated (diurnal load, Poisson traffic, "
        "long-tailed latency in Prometheus histogram buckets, 15 s scrapes with jitter and "
        "losses, counter resets, series created on first use) and each policy's settings: "
        "`bench/README.md`, section 4. A regression of k× multiplies the service's error "
        "share or every request's duration by k from the deployment on.",
        "",
        *headline(q),
        "",
        "Recall at 1.5× and ≥ 2× pools the error and latency steps. Times run from the "
        "deployment. The diagnostic rows are not policies to compare: each changes one thing "
        "in a configuration to show what it costs or buys (below).",
        "",
        "### Every scenario: share rolled back · median time to rollback",
        "",
        *scenario_table(q, HEALTHY, "healthy (should not roll back)"),
        "",
        *scenario_table(q, BAD, "bad (should roll back)"),
        "",
        "### What backstop did instead",
        "",
        "Verdicts of backstop's two rows (counts); inconclusive means no action and an alert "
        "(\"could not judge\"), with the check that was blind:",
        "",
        *verdict_mix(q),
        "",
        *why(q),
        *configs(q.get("configs", {})),
    ]
    return out


def blocks(text):
    """A config's check tables by name: {name: [lines]}."""
    out = {}
    for part in text.split("[[watch.check]]")[1:]:
        lines = [x for x in part.strip().splitlines() if x.strip()]
        name = next((x.split("=", 1)[1].strip().strip('"') for x in lines
                     if x.startswith("name")), "?")
        out[name] = lines
    return out


def configs(cfgs):
    """The defaults' TOML in full, the other rows as the keys they add."""
    base = cfgs.get("backstop")
    if not base:
        return []
    out = ["### backstop's configurations", "",
           "`backstop, defaults` (timing keys unset: backstop's defaults; every row keeps them):",
           "", "```toml", base, "```", ""]
    ref = blocks(base)
    for p, text in cfgs.items():
        if p == "backstop":
            continue
        adds = []
        for name, lines in blocks(text).items():
            new = [x for x in lines if x not in ref.get(name, [])]
            gone = [x for x in ref.get(name, []) if x not in lines]
            if new or gone:
                adds.append(f"check `{name}`: " + ", ".join(
                    [f"`{x}`" for x in new] + [f"without `{x}`" for x in gone]))
        out.append(f"- {LABELS.get(p, p)}: " + ("; ".join(adds) or "no change") + ".")
    return out + [""]
