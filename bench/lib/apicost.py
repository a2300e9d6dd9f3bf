"""What reading backstop's API costs while its watches observe: `/metrics` (size, the first
fetch and the mean of the next few), `GET /v1/status` (the first page at the default limit,
and walking every page) and `GET /v1/watches/{name}` (one watch's detail, with its samples).

Times are the client's: request sent to the last byte read, on one kept-alive connection,
one request at a time."""

import time

from common import median

METRICS_FETCHES = 5
DETAIL_FETCHES = 5


def ms(fn):
    """(value, milliseconds the call took)."""
    a = time.monotonic()
    v = fn()
    return v, (time.monotonic() - a) * 1000


def measure(bs, n):
    """Returns (costs, every watch's summary from the walk of /v1/status)."""
    text, first_ms = ms(bs.metrics_text)
    again = [ms(bs.metrics_text)[1] for _ in range(METRICS_FETCHES)]
    page, page_ms = ms(bs.status_page)
    summaries, pages, after = [], [], None
    t0 = time.monotonic()
    while True:
        p, t = ms(lambda: bs.status_page(after))
        pages.append(t)
        summaries += p["watches"]
        after = p.get("next")
        if not after:
            break
    walk_ms = (time.monotonic() - t0) * 1000
    name = f"w{n // 2}"
    detail = [ms(lambda: bs.watch(name))[1] for _ in range(DETAIL_FETCHES)]
    costs = {
        "n": n,
        "metrics_bytes": len(text.encode()),
        "metrics_first_ms": first_ms,
        "metrics_mean_ms": sum(again) / len(again),
        "metrics_max_ms": max(again),
        "metrics_fetches": len(again),
        "status_first_page_ms": page_ms,
        "status_first_page_watches": len(page["watches"]),
        "status_pages": len(pages),
        "status_walk_ms": walk_ms,
        "status_page_max_ms": max(pages),
        "status_watches": len(summaries),
        "watch_detail_median_ms": median(detail),
        "watch_detail_max_ms": max(detail),
        "watch_detail_name": name,
    }
    return costs, summaries
