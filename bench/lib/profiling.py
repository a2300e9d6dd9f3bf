"""Where the time goes: an on-CPU profile (perf) and a wall-clock thread-state profile.

The wall-clock profile samples, for every thread of a process, its scheduler state and the
system call it is in (from /proc/PID/task/TID/{stat,syscall}) a few hundred times per second.
It shows what perf cannot: time a tokio worker spends blocked (in fdatasync, or on a futex
waiting for a lock) instead of running tasks.
"""

import os
import subprocess
import time

from common import log

# x86_64 system call numbers worth naming
SYSCALLS = {
    0: "read", 1: "write", 3: "close", 7: "poll", 17: "pread64", 18: "pwrite64", 20: "writev",
    23: "select", 42: "connect", 44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg",
    74: "fsync", 75: "fdatasync", 202: "futex", 232: "epoll_wait", 281: "epoll_pwait",
    288: "accept4", 35: "nanosleep", 230: "clock_nanosleep", 76: "truncate", 77: "ftruncate",
    2: "open", 257: "openat", 87: "unlink", 72: "fcntl", 8: "lseek", 9: "mmap", 11: "munmap",
    28: "madvise", 441: "epoll_pwait2", 4: "stat", 5: "fstat", 262: "newfstatat",
}


def thread_states(pid, seconds=5.0, hz=200):
    """{thread name: {activity: fraction of samples}} where activity is "running" or
    "<state> in <syscall>"."""
    counts = {}
    end = time.monotonic() + seconds
    period = 1.0 / hz
    while time.monotonic() < end:
        t = time.monotonic()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            break
        for tid in tids:
            base = f"/proc/{pid}/task/{tid}"
            try:
                with open(base + "/comm") as f:
                    name = f.read().strip()
                with open(base + "/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                with open(base + "/syscall") as f:
                    sc = f.read().split()
            except OSError:
                continue
            if state == "R" or not sc or sc[0] == "running":
                act = "running"
            elif sc[0] == "-1":
                act = f"{state} (no syscall)"
            else:
                nr = int(sc[0])
                act = f"{state} in {SYSCALLS.get(nr, 'syscall ' + str(nr))}"
            c = counts.setdefault(name, {})
            c[act] = c.get(act, 0) + 1
        left = period - (time.monotonic() - t)
        if left > 0:
            time.sleep(left)
    out = {}
    for name, c in counts.items():
        total = sum(c.values())
        out[name] = {k: round(v / total, 3) for k, v in sorted(c.items(), key=lambda kv: -kv[1])}
    return out


def perf_profile(pid, seconds, outdir, tag):
    """perf record (cpu-clock) of a running process; writes perf-TAG.txt (self time by
    symbol) and perf-TAG-callers.txt (inclusive time); returns the first path or None."""
    data = os.path.join(outdir, f"perf-{tag}.data")
    report = os.path.join(outdir, f"perf-{tag}.txt")
    try:
        subprocess.run(["perf", "record", "-e", "cpu-clock", "-F", "499", "-g", "-o", data,
                        "-p", str(pid), "--", "sleep", str(seconds)],
                       check=True, capture_output=True, timeout=seconds + 60)
        with open(report, "w") as f:
            subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                            "--percent-limit", "1", "--sort", "dso,symbol", "-g", "none"],
                           stdout=f, stderr=subprocess.DEVNULL, check=True, timeout=300)
        with open(report.replace(".txt", "-callers.txt"), "w") as f:
            subprocess.run(["perf", "report", "-i", data, "--stdio", "--children",
                            "--percent-limit", "3", "--sort", "symbol", "-g", "none"],
                           stdout=f, stderr=subprocess.DEVNULL, check=True, timeout=300)
        os.unlink(data)
        return report
    except (OSError, subprocess.SubprocessError) as e:
        log(f"perf failed: {e}")
        return None


def top_lines(path, n=25):
    """The first n symbol lines of a perf report."""
    if not path or not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            out.append(line.rstrip())
            if len(out) >= n:
                break
    return out


def io_counters(pid):
    """syscr/syscw/write_bytes from /proc/PID/io."""
    out = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                k, v = line.split(":")
                out[k.strip()] = int(v)
    except OSError:
        pass
    return out


def massif_summary(ms_print_text, top=12):
    """The peak snapshot of a massif run: [(percent, bytes, allocating frame, backstop frame)]
    for the largest top-level allocation sites."""
    import re
    lines = ms_print_text.split("\n")
    peak = None
    for line in lines:
        m = re.search(r"Detailed snapshots: \[.*?(\d+) \(peak\)", line)
        if m:
            peak = m.group(1)
            break
    start = next((k for k, line in enumerate(lines)
                  if peak and re.match(rf"^\s+{peak}\s", line)), None)
    if start is None:
        return []
    entry = re.compile(r"^([| ]*)->(\d+\.\d+)% \(([\d,]+)B\) (?:0x[0-9A-F]+: )?(.*?)(?: \(in .*)?$")
    out, cur = [], None
    for line in lines[start + 2:]:
        if line.startswith("---") or re.match(r"^\s+\d+\s+[\d,]+\s+[\d,]+", line):
            break
        m = entry.match(line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        name = m.group(4).strip()
        generic = name.startswith(("__rustc", "alloc::", "<alloc::", "malloc", "realloc"))
        if depth == 0:
            cur = [float(m.group(2)), int(m.group(3).replace(",", "")), name, None]
            out.append(cur)
        elif cur and cur[3] is None:
            if cur[2].startswith(("__rustc", "alloc::", "<alloc::")) and not generic:
                cur[2] = name
            if "backstop::" in name:
                cur[3] = name
    out = [x for x in out if not x[2].startswith("in ") and "below massif" not in x[2]]
    return sorted(out, key=lambda x: -x[1])[:top]
