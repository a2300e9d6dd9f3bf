"""Shared plumbing for the benchmarks: processes, ports, HTTP, /proc readings, statistics.

Python 3 standard library only. Every process a benchmark starts goes through `Procs`, which
stops each one by its own pid (SIGTERM, then SIGKILL) when the benchmark ends or fails.
"""

import http.client
import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    """A free loopback TCP port (bound and released; the small race is acceptable here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_ts(s):
    """RFC 3339 (nanoseconds, Z or offset) to unix seconds."""
    from datetime import datetime
    s = s.replace("Z", "+00:00")
    if "." in s:
        head, rest = s.split(".", 1)
        i = max(rest.find("+"), rest.find("-"))
        frac, tz = (rest[:i], rest[i:]) if i >= 0 else (rest, "")
        s = f"{head}.{frac[:6].ljust(6, '0')}{tz}"
    return datetime.fromisoformat(s).timestamp()


def now_ms():
    return time.time() * 1000.0


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# processes


class Procs:
    """Every child process of a benchmark; `stop_all` ends them by pid, newest first."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = []  # (name, Popen, logfile)
        self.commands = {}  # name -> argv, for RESULTS.md

    def start(self, name, argv, cwd=None, env=None, stdout=None):
        logpath = os.path.join(self.logdir, f"{name}.log")
        logf = open(logpath, "ab")
        out = stdout if stdout is not None else logf
        self.commands[name] = list(argv)
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=logf,
                             stdin=subprocess.DEVNULL)
        self.procs.append((name, p, logf))
        return p

    def stop(self, p, timeout=20.0):
        """SIGTERM, wait, SIGKILL. Returns seconds until exit."""
        t0 = time.monotonic()
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for i, (_, q, f) in enumerate(self.procs):
            if q is p:
                f.close()
                del self.procs[i]
                break
        return time.monotonic() - t0

    def stop_all(self):
        for _, p, _ in list(reversed(self.procs)):
            try:
                self.stop(p, timeout=10.0)
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass


# ---------------------------------------------------------------------------------------------
# HTTP


def http_get(url, timeout=10.0, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def get_json(url, timeout=10.0):
    _, body = http_get(url, timeout)
    return json.loads(body)


def post_json(url, body, headers=None, timeout=10.0):
    data = json.dumps(body).encode()
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


class KeepAlive:
    """One persistent HTTP/1.1 connection, for many small requests to one server."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn = None
        self.lock = threading.Lock()

    def request(self, method, path, body=None, headers=None):
        with self.lock:
            return self._request(method, path, body, headers)

    def _request(self, method, path, body, headers):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                h = {"Content-Type": "application/json"}
                h.update(headers or {})
                data = json.dumps(body).encode() if body is not None else None
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, raw
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def close(self):
        if self.conn:
            self.conn.close()


def wait_until(fn, timeout, every=0.05, what="condition"):
    """Polls `fn` until it returns a truthy value; returns it. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the target may not be up yet
            last_exc = e
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc})")


def wait_http_ok(url, timeout=30.0, every=0.05):
    def ok():
        try:
            return http_get(url, timeout=2)[0] == 200
        except Exception:  # noqa: BLE001
            return False
    return wait_until(ok, timeout, every, what=url)


# ---------------------------------------------------------------------------------------------
# /proc


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14, stime 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_split(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def thread_cpu(pid):
    """{thread name: cpu seconds} summed over threads of the same name."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
        except OSError:
            pass
    return out


def _all_stats():
    """{pid: (ppid, cpu_ticks, comm)} for every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                raw = f.read()
            comm = raw[raw.index("(") + 1: raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            out[int(d)] = (int(fields[1]), int(fields[11]) + int(fields[12]), comm)
        except (OSError, ValueError):
            pass
    return out


class ForeignLoad:
    """Samples, in the background, the CPU used by processes outside this benchmark's tree, so
    RESULTS.md can say whether the machine was otherwise idle while the numbers were taken."""

    def __init__(self, every=2.0):
        self.every = every
        self.samples = []  # (t, foreign cores, top [(comm, cores)])
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)

    def _ours(self, stats):
        mine = {os.getpid()}
        # ancestors (run.sh and its shell) count as ours too
        p = os.getppid()
        while p > 1 and p in stats:
            mine.add(p)
            p = stats[p][0]
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _, _) in stats.items():
                if ppid in mine and pid not in mine:
                    mine.add(pid)
                    changed = True
        return mine

    def _run(self):
        prev = _all_stats()
        tprev = time.monotonic()
        while not self._stop.wait(self.every):
            cur = _all_stats()
            t = time.monotonic()
            mine = self._ours(cur)
            per = {}
            for pid, (_, ticks, comm) in cur.items():
                if pid in mine or pid not in prev:
                    continue
                d = ticks - prev[pid][1]
                if d > 0:
                    per[comm] = per.get(comm, 0) + d
            dt = t - tprev
            total = sum(per.values()) / CLK_TCK / dt
            top = sorted(per.items(), key=lambda kv: -kv[1])[:3]
            self.samples.append((t, total, [(c, round(v / CLK_TCK / dt, 3)) for c, v in top]))
            prev, tprev = cur, t

    def summary(self, since=None):
        s = [x for x in self.samples if since is None or x[0] >= since]
        if not s:
            return {"mean_cores": None, "max_cores": None, "top": []}
        worst = max(s, key=lambda x: x[1])
        return {
            "mean_cores": round(sum(x[1] for x in s) / len(s), 3),
            "max_cores": round(worst[1], 3),
            "top": worst[2],
        }


def rustc_running():
    """pids of rustc/cargo processes (another build competing for the CPU)."""
    found = []
    for pid, (_, _, comm) in _all_stats().items():
        if comm in ("rustc", "cargo") or comm.startswith("cargo-"):
            found.append((pid, comm))
    return found


# ---------------------------------------------------------------------------------------------
# statistics


def quantile(xs, q):
    """Linear-interpolated quantile (q in 0..1) of a non-empty list."""
    s = sorted(xs)
    if not s:
        return math.nan
    pos = (len(s) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median(xs):
    return quantile(xs, 0.5)


def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)
