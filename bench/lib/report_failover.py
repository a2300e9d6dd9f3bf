"""Benchmark 5 (failover) in bench/RESULTS.md: its rows in the targets table and its section,
from bench/results/failover.json (written by `cargo bench --bench failover`).
"""


def s3(x):
    return "—" if x is None else f"{x:.3f}"


def targets(fo):
    name_dm = "failover: duplicate and missed rollbacks, owner killed (-9)"
    name_t = "failover: added time to rollback vs one node"
    if not fo:
        return [(name_dm, "0 and 0", "not run", None, ""),
                (name_t, "≤ lease + interval (+ settle)", "not run", None, "")]
    f = fo["failover"]
    n = len(f["rounds"])
    bound = (f"≤ lease + interval ({fo['lease_s']:g} + {fo['interval_s']:g} s; "
             f"+ settle {fo['settle_s']:g} s with a create in flight)")
    w = fo.get("worst_excess") or {}
    measured = (f"{fo['rounds_over_bound']} of {n} rounds over; worst +{s3(w.get('extra_s'))} s "
                f"(bound {s3(w.get('bound_s'))} s)")
    return [
        (name_dm, "0 and 0", f"{f['duplicates']} duplicate, {f['missed']} missed (n={n})",
         f["duplicates"] == 0 and f["missed"] == 0, ""),
        (name_t, bound, measured, fo["rounds_over_bound"] == 0, ""),
    ]


def row(name, s):
    p, d = s["to_post"], s["to_done"]
    return (f"| {name} | {len(s['rounds'])} | {s3(p.get('median'))} | {s3(p.get('p95'))} | "
            f"{s3(p.get('max'))} | {s3(d.get('median'))} | {s3(d.get('p95'))} | "
            f"{s3(d.get('max'))} | {s['duplicates']} | {s['missed']} |")


def section(fo):
    out = ["## 5. Failover", ""]
    if not fo:
        return out + ["Not run (`bench/run.sh --only 5`).", ""]
    out += [
        "Three real backstop nodes (lease 3 s) on one PostgreSQL (a throwaway cluster of the "
        "benchmark's own), the Octopus fake and a fake app; one http watch (interval "
        f"{fo['interval_s']:g} s, failure_limit 3, window 8 s). Each round deploys a bad release "
        "(its /health answers 503 from 300 ms after the deployment), announces it to a node, and "
        "kills (-9) the watch's owner at a seeded moment: during the observation (0–300 ms, "
        "before it turns bad: only a takeover can catch it), around the condemn (0.8–1.6 s), or "
        "with the rollback's create in flight (the fake holds the 201 for 5 s; the kill comes as "
        "the POST arrives). The killed node restarts once the rollback is made, and the next "
        "round waits for the fleet to settle (placement owner, watch idle). Baseline: one node, "
        "same database server, nobody killed. Times in seconds from the bad deployment's "
        "creation, by the fake Octopus's clock: *created* = the rollback deployment's creation, "
        "*done* = a node reports the rollback succeeded (after any settle search for a create "
        "whose answer was lost).",
        "",
        "| side | n | to rollback created: median | p95 | max | to rollback done: median | p95 "
        "| max | duplicates | missed |",
        "|---|---|---|---|---|---|---|---|---|---|",
        row("1 node, no failure (baseline)", fo["baseline"]),
        row("3 nodes, owner killed", fo["failover"]),
        "",
        f"Rounds over the bound (baseline median + lease {fo['lease_s']:g} s + interval "
        f"{fo['interval_s']:g} s, + settle {fo['settle_s']:g} s for a create in flight, "
        f"measured on *done*): {fo['rounds_over_bound']}. Seed {fo['seed']}; "
        f"took {fo['took_s']:.0f} s.",
        "",
        "| round | phase | killed at | created | done | creates |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(fo["failover"]["rounds"]):
        out.append(f"| {i} | {r['phase'] or '—'} | {s3(r['killed_at_s'])} | "
                   f"{s3(r['to_post_s'])} | {s3(r['to_done_s'])} | {r['creates']} |")
    out += ["", f"Command: `{fo.get('command', 'cargo bench --bench failover')}`.", ""]
    if fo.get("note"):
        out += [fo["note"], ""]
    return out
