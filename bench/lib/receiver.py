"""The webhook receiver of the pipeline users build instead of backstop: Alertmanager POSTs
here, and for each firing alert this script asks the deployment API (Octopus-shaped) for the
newest successful deployments and deploys the release before the current one.

    receiver.py --port PORT --map MAP.json --log EVENTS.jsonl

MAP.json maps an alert's `instance` label to the deployment API base URL of that service.
Python 3 standard library only. One rollback per (service, current release): Alertmanager may
notify the same alert again (group_interval / repeat_interval), a script must not roll back twice.
"""

import argparse
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SPACE = "Spaces-1"
ENVIRONMENT = "Environments-1"


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "X-Octopus-ApiKey": "API-RECEIVER"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


class State:
    def __init__(self, mapping, log_path):
        self.mapping = mapping
        self.log = open(log_path, "a", buffering=1)
        self.lock = threading.Lock()
        self.handled = set()

    def event(self, **kw):
        with self.lock:
            self.log.write(json.dumps(kw) + "\n")

    def rollback(self, alert, received_ms):
        instance = alert.get("labels", {}).get("instance", "")
        deployer = self.mapping.get(instance)
        if not deployer:
            self.event(kind="unknown_instance", instance=instance, received_ms=received_ms)
            return
        items = call("GET", f"{deployer}/api/{SPACE}/deployments?taskState=Success")["Items"]
        if not items:
            return
        current = items[0]["ReleaseId"]
        with self.lock:
            if (deployer, current) in self.handled:
                duplicate = True
            else:
                duplicate = False
                self.handled.add((deployer, current))
        if duplicate:
            self.event(kind="duplicate", instance=instance, current=current,
                       received_ms=received_ms, starts_at=alert.get("startsAt"))
            return
        target = next((d["ReleaseId"] for d in items if d["ReleaseId"] != current), None)
        if target is None:
            self.event(kind="no_target", instance=instance, current=current)
            return
        dep = call("POST", f"{deployer}/api/{SPACE}/deployments", {
            "ReleaseId": target, "EnvironmentId": ENVIRONMENT,
            "Comments": f"alertmanager webhook rollback of {current} "
                        f"(alert {alert.get('labels', {}).get('alertname')} "
                        f"since {alert.get('startsAt')})"})
        self.event(kind="rollback", instance=instance, current=current, target=target,
                   deployment=dep.get("Id"), received_ms=received_ms,
                   called_ms=time.time() * 1000, starts_at=alert.get("startsAt"))


def handler(state):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's naming
            received_ms = time.time() * 1000
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                msg = json.loads(body)
                for alert in msg.get("alerts", []):
                    if alert.get("status") == "firing":
                        state.rollback(alert, received_ms)
                code = 200
            except Exception as e:  # noqa: BLE001 - answer 500, Alertmanager retries
                state.event(kind="error", error=str(e), received_ms=received_ms)
                code = 500
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):  # noqa: N802 - readiness
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--map", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    with open(args.map) as f:
        mapping = json.load(f)
    state = State(mapping, args.log)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(state))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
