"""The programs under test and their fixtures: backstop, its simulator, nginx, Prometheus,
Alertmanager and blackbox_exporter, each started on loopback from a temporary directory."""

import json
import os
import subprocess
import time

from common import (KeepAlive, free_port, get_json, http_get, post_json, wait_http_ok,
                    wait_until)

TOKEN = "bench-token"
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
NGINX = "/usr/sbin/nginx"


# ---------------------------------------------------------------------------------------------
# the simulator (`backstop simulate`)


class Simulator:
    """A simulated service and Octopus-shaped deployment API (one `backstop simulate`)."""

    def __init__(self, procs, binary, name="sim"):
        self.proc = procs.start(name, [binary, "simulate"], stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{binary} simulate printed nothing (see {name}.log)")
        info = json.loads(line)
        self.service = info["service"]
        self.deployer = info["deployer"]
        self.space = info["space"]
        self.project = info["project"]
        self.environment = info["environment"]
        self.http = KeepAlive(self.deployer)

    def release(self, version, behaviour):
        status, raw = self.http.request("POST", "/sim/releases",
                                        {"version": version, "behaviour": behaviour})
        assert status == 201, (status, raw)
        return json.loads(raw)["id"]

    def deploy(self, release, comments="CI pipeline"):
        """Deploys like a CI pipeline; returns (deployment id, created unix ms)."""
        status, raw = self.http.request(
            "POST", f"/api/{self.space}/deployments",
            {"ReleaseId": release, "EnvironmentId": self.environment, "Comments": comments},
            headers={"X-Octopus-ApiKey": "API-BENCH"})
        assert status == 201, (status, raw)
        dep_id = json.loads(raw)["Id"]
        for d in self.deployments():
            if d["id"] == dep_id:
                return dep_id, d["created_unix_ms"]
        raise RuntimeError(f"deployment {dep_id} not listed")

    def deployments(self):
        status, raw = self.http.request("GET", "/sim/deployments")
        assert status == 200, status
        return json.loads(raw)["deployments"]

    def running(self):
        """The release of the newest finished deployment."""
        done = [d for d in self.deployments() if d["done"]]
        return done[-1]["release"] if done else None


# ---------------------------------------------------------------------------------------------
# backstop


def backstop_config(state_dir, listen, deployers, watches):
    """TOML for `backstop run`. deployers: {name: {url, ...options}}; watches: list of dicts
    with name, deployer, options (dict of watch keys) and checks (list of dicts)."""

    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    out = [
        "[server]",
        f'listen = "{listen}"',
        'token_file = "token"',
        "",
        "[state]",
        f"dir = {json.dumps(state_dir)}",
        "",
    ]
    for name, d in deployers.items():
        out.append(f"[deployers.{name}]")
        out.append('kind = "octopus"')
        out.append('space = "Spaces-1"')
        out.append('api_key_file = "api-key"')
        for k, v in d.items():
            out.append(f"{k} = {val(v)}")
        out.append("")
    for w in watches:
        out.append("[[watch]]")
        out.append(f"name = {val(w['name'])}")
        out.append(f"deployer = {val(w['deployer'])}")
        out.append('project = "Projects-1"')
        out.append('environment = "Environments-1"')
        for k, v in w.get("options", {}).items():
            out.append(f"{k} = {val(v)}")
        for c in w["checks"]:
            out.append("[[watch.check]]")
            for k, v in c.items():
                out.append(f"{k} = {val(v)}")
        out.append("")
    return "\n".join(out)


class Backstop:
    """`backstop run` with a generated config in its own directory."""

    def __init__(self, procs, binary, workdir, deployers, watches, name="backstop", env=None,
                 wait=True, state_dir=None, wrap=None):
        os.makedirs(workdir, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        with open(os.path.join(workdir, "token"), "w") as f:
            f.write(TOKEN + "\n")
        with open(os.path.join(workdir, "api-key"), "w") as f:
            f.write("API-BENCH\n")
        self.config = os.path.join(workdir, "backstop.toml")
        with open(self.config, "w") as f:
            f.write(backstop_config(state_dir or os.path.join(workdir, "state"),
                                    f"127.0.0.1:{self.port}", deployers, watches))
        self.argv = list(wrap or []) + [binary, "run", "--config", self.config]
        self.started = time.monotonic()
        self.proc = procs.start(name, self.argv, env=env)
        self.pid = self.proc.pid
        self.api = KeepAlive(self.url)
        if wait:
            wait_http_ok(self.url + "/healthz", timeout=60, every=0.01)

    def announce(self, watch, release, deployment=None, rollback_safe=None):
        body = {"watch": watch, "release": release}
        if deployment:
            body["deployment"] = deployment
        if rollback_safe is not None:
            body["rollback_safe"] = rollback_safe
        status, raw = self.api.request("POST", "/v1/deployments", body,
                                       headers={"Authorization": f"Bearer {TOKEN}"})
        if status != 202:
            raise RuntimeError(f"announce {watch} {release}: {status} {raw[:200]!r}")

    def status_page(self, after=None, limit=None):
        """One page of `GET /v1/status`: {watches: [summary, ...], next: cursor or null}."""
        from urllib.parse import urlencode
        q = {k: v for k, v in (("limit", limit), ("after", after)) if v is not None}
        status, raw = self.api.request("GET", "/v1/status" + (f"?{urlencode(q)}" if q else ""))
        assert status == 200, (status, raw[:200])
        return json.loads(raw)

    def status(self, limit=None):
        """Every watch's summary (no samples), walking the pages of `GET /v1/status`."""
        out, after = [], None
        while True:
            page = self.status_page(after, limit)
            out += page["watches"]
            after = page.get("next")
            if not after:
                return out

    def watch(self, name):
        status, raw = self.api.request("GET", f"/v1/watches/{name}")
        assert status == 200, status
        return json.loads(raw)

    def history(self, watch, limit=50):
        status, raw = self.api.request("GET", f"/v1/history?watch={watch}&limit={limit}")
        assert status == 200, status
        return json.loads(raw)["deployments"]

    def verdict(self, obs_id):
        status, raw = self.api.request("GET", f"/v1/verdicts/{obs_id}")
        assert status == 200, status
        return json.loads(raw)

    def metrics_text(self):
        status, raw = self.api.request("GET", "/metrics")
        assert status == 200, status
        return raw.decode()

    def checks_total(self):
        """Sum of backstop_checks_total over every label set."""
        return sum_metric(self.metrics_text(), "backstop_checks_total")


def sum_metric(text, name, where=None):
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric = head.split("{", 1)[0]
        if metric != name:
            continue
        if where and not all(f'{k}="{v}"' in head for k, v in where.items()):
            continue
        total += float(value)
    return total


# ---------------------------------------------------------------------------------------------
# nginx: cheap local targets


def start_nginx(procs, workdir, name="nginx", workers=1):
    os.makedirs(workdir, exist_ok=True)
    port = free_port()
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
master_process on;
worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""")
    p = procs.start(name, [NGINX, "-c", conf, "-e", f"{workdir}/error.log"])
    base = f"http://127.0.0.1:{port}"
    wait_http_ok(base + "/ready", timeout=20)
    return p, base


def tree_pids(pid):
    """pid and its descendants."""
    pids = {pid}
    changed = True
    while changed:
        changed = False
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) in pids:
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if ppid in pids:
                pids.add(int(d))
                changed = True
    return sorted(pids)


# ---------------------------------------------------------------------------------------------
# the Prometheus pipeline


def blackbox_config(path, timeout=None):
    with open(path, "w") as f:
        f.write("modules:\n  http_2xx:\n    prober: http\n")
        if timeout:
            f.write(f"    timeout: {timeout}\n")
        f.write("    http:\n      preferred_ip_protocol: ip4\n")


def start_blackbox(procs, workdir, name="blackbox", timeout=None):
    os.makedirs(workdir, exist_ok=True)
    port = free_port()
    conf = os.path.join(workdir, "blackbox.yml")
    blackbox_config(conf, timeout)
    p = procs.start(name, [BLACKBOX, f"--config.file={conf}",
                           f"--web.listen-address=127.0.0.1:{port}"])
    base = f"http://127.0.0.1:{port}"
    wait_http_ok(base + "/metrics", timeout=30)
    return p, f"127.0.0.1:{port}"


def prometheus_config(path, scrape_interval, eval_interval, scrape_timeout, blackbox, targets,
                      rule_file=None, alertmanager=None, job="blackbox"):
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {eval_interval}",
    ]
    if scrape_timeout:
        lines.append(f"  scrape_timeout: {scrape_timeout}")
    if rule_file:
        lines += ["rule_files:", f"  - {rule_file}"]
    if alertmanager:
        lines += ["alerting:", "  alertmanagers:", "    - static_configs:",
                  f"        - targets: ['{alertmanager}']"]
    lines += [
        "scrape_configs:",
        f"  - job_name: {job}",
        "    metrics_path: /probe",
        "    params:",
        "      module: [http_2xx]",
        "    file_sd_configs:",
        f"      - files: ['{path}.targets.json']",
        "    relabel_configs:",
        "      - source_labels: [__address__]",
        "        target_label: __param_target",
        "      - source_labels: [__param_target]",
        "        target_label: instance",
        "      - target_label: __address__",
        f"        replacement: {blackbox}",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(path + ".targets.json", "w") as f:
        json.dump([{"targets": targets}], f)


def start_prometheus(procs, workdir, config, name="prometheus"):
    port = free_port()
    p = procs.start(name, [
        PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir}/tsdb",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
    ])
    base = f"http://127.0.0.1:{port}"
    wait_http_ok(base + "/-/ready", timeout=60)
    return p, base


def prom_query(base, query, at=None):
    from urllib.parse import urlencode
    params = {"query": query}
    if at is not None:
        params["time"] = f"{at:.3f}"
    v = get_json(f"{base}/api/v1/query?{urlencode(params)}", timeout=60)
    if v["status"] != "success":
        raise RuntimeError(v)
    return v["data"]["result"]


def start_alertmanager(procs, workdir, receiver_url, group_wait, group_interval,
                       repeat_interval, name="alertmanager"):
    os.makedirs(workdir, exist_ok=True)
    port = free_port()
    conf = os.path.join(workdir, "alertmanager.yml")
    with open(conf, "w") as f:
        f.write(f"""route:
  receiver: rollback
  group_by: ['alertname', 'instance']
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: {repeat_interval}
receivers:
  - name: rollback
    webhook_configs:
      - url: '{receiver_url}'
        send_resolved: false
""")
    # Clustering (gossip on 0.0.0.0:9094) is disabled: one instance, loopback only.
    p = procs.start(name, [
        ALERTMANAGER, f"--config.file={conf}", f"--storage.path={workdir}/data",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        "--log.level=warn",
    ])
    base = f"http://127.0.0.1:{port}"
    wait_http_ok(base + "/-/ready", timeout=30)
    return p, f"127.0.0.1:{port}", base


__all__ = [
    "Simulator", "Backstop", "backstop_config", "sum_metric", "start_nginx", "tree_pids",
    "start_blackbox", "prometheus_config", "start_prometheus", "prom_query",
    "start_alertmanager", "post_json", "http_get", "wait_until",
]
