#!/usr/bin/env python3
"""N1, several instances on one database: three `coffer serve` instances on one PostgreSQL behind nginx (Debian's
package, with the README's deploy/nginx/coffer-locations.conf), charge and freeze load through nginx, one instance
killed with SIGKILL in the middle. Then: every request retried with its idempotency key through nginx; every acknowledged
write is in the ledger exactly once, nothing applied twice; the freezes of the load expire on the surviving instances
(their jobs take over); no scheduled job ran on two instances at once (GET /v1/operator/job-runs: runs numbered once
each, a run starts after the previous one finished or, when its instance died, after its lease ran out); `coffer verify`.

Usage: cluster-test.py BIN --database URL     Standard library only."""
import http.client, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time
from datetime import datetime

bin_path = os.path.abspath(sys.argv[1])
database = sys.argv[sys.argv.index("--database") + 1]
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
work = tempfile.mkdtemp(prefix="coffer-cluster-")
log_dir = os.environ.get("COFFER_LOG_DIR") or work
lease_seconds = 5
failures = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args):
    out = subprocess.run([bin_path] + args + ["--database", database], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"coffer {args[0]} failed: {out.stdout}{out.stderr}")
    return out.stdout + out.stderr


run(["migrate"])
key = re.search(r"platform key: (\S+)", run(["platform-key", "--name", "cluster-test"])).group(1)

# Three instances, one database; jobs every second with five-second leases, so that a dead instance's jobs move soon.
ports = [free_port() for _ in range(3)]
instances, nginx = [], None


def cleanup():
    """Whatever happens to the test, it leaves no server or nginx behind."""
    for p in instances + ([nginx] if nginx else []):
        if p.poll() is None:
            p.kill()


import atexit
atexit.register(cleanup)
for i, port in enumerate(ports):
    log = open(os.path.join(log_dir, f"cluster-{i + 1}.log"), "w")
    proc = subprocess.Popen([bin_path, "serve", "--database", database, "--port", str(port), "--data-dir", os.path.join(work, f"data-{i}"),
                             "--job-interval-seconds", "1", "--job-lease-seconds", str(lease_seconds), "--trusted-proxy", "127.0.0.1",
                             "--log-format", "json", "--no-console"], stdout=log, stderr=log)
    instances.append(proc)


def wait_for_port(port, proc, seconds, failure):
    """Until something listens on the port; `failure()` says why not when the process ends or time runs out."""
    deadline = time.time() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                sys.exit(failure())
            time.sleep(0.1)


for i, (proc, port) in enumerate(zip(instances, ports)):
    wait_for_port(port, proc, 60, lambda: f"instance {i + 1} did not start:\n" + open(os.path.join(log_dir, f"cluster-{i + 1}.log")).read())

# nginx in front, with the locations the README's production set-up uses.
nginx_port = free_port()
os.chmod(work, 0o755)  # nginx's workers (nobody, when started by root) keep large request bodies under it
for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
    os.makedirs(os.path.join(work, "nginx", d), exist_ok=True)
    os.chmod(os.path.join(work, "nginx", d), 0o777)
conf = os.path.join(work, "nginx.conf")
upstreams = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in ports)
open(conf, "w").write(f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx/client_body;
    proxy_temp_path {work}/nginx/proxy;
    fastcgi_temp_path {work}/nginx/fastcgi;
    uwsgi_temp_path {work}/nginx/uwsgi;
    scgi_temp_path {work}/nginx/scgi;
    upstream coffer {{
{upstreams}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{nginx_port};
        include {repo}/deploy/nginx/coffer-locations.conf;
    }}
}}
""")
nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
nginx = subprocess.Popen([nginx_bin, "-e", os.path.join(work, "nginx-error.log"), "-c", conf, "-g", "daemon off;"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "nginx-stderr.log"), "w"))
wait_for_port(nginx_port, nginx, 20,
              lambda: "nginx did not start: " + open(os.path.join(work, "nginx-stderr.log")).read()
              + open(os.path.join(work, "nginx-error.log")).read())


def call(conn, method, path, body=None, idem=None):
    headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    if idem:
        headers["Idempotency-Key"] = idem
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, r.getheader("Idempotent-Replayed"), (json.loads(data) if data.startswith(b"{") else {})


def lb():
    return http.client.HTTPConnection("127.0.0.1", nginx_port, timeout=30)


def micros(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1_000_000)


conn = lb()
email = f"cluster-{os.urandom(4).hex()}@example.com"
status, _, body = call(conn, "POST", "/v1/accounts", {"type": "personal", "entityName": "cluster", "contactEmail": email,
                       "owner": {"email": email, "name": "cluster", "password": "correct horse battery"}}, "cluster-account-" + email)
assert status == 201, (status, body)
account = body["account"]["id"]
status, _, body = call(conn, "POST", f"/v1/accounts/{account}/adjustments",
                       {"amount": "100000.00", "bucket": "cash", "reason": "cluster test funding"}, "cluster-fund-" + account)
assert status == 201, (status, body)

# B2 across instances: a metered account whose usage the settlement job of one instance is settling when it is killed.
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
status, _, body = call(conn, "PUT", "/v1/operator/products/cluster-meter",
                       {"name": {"zh": "计量", "en": "Meter"}, "settlementCycle": "hourly", "taxCategory": "cloud_service"})
assert status in (200, 201), (status, body)
meter_email = f"cluster-meter-{os.urandom(4).hex()}@example.com"
status, _, body = call(conn, "POST", "/v1/accounts", {"type": "personal", "entityName": "cluster meter", "contactEmail": meter_email,
                       "owner": {"email": meter_email, "name": "meter", "password": "correct horse battery"}}, "cluster-account-" + meter_email)
assert status == 201, (status, body)
meter = body["account"]["id"]
status, _, _ = call(conn, "POST", f"/v1/accounts/{meter}/adjustments", {"amount": "1000000.00", "bucket": "cash", "reason": "meter"},
                    "cluster-fund-" + meter)
assert status == 201, status
RESOURCES, HOURS, HOUR = 500, 10, 3600


def put_resource(r):
    status, _, body = call(lb(), "PUT", f"/v1/accounts/{meter}/resources/res-{r}", {"productId": "cluster-meter", "name": f"res-{r}"})
    assert status in (200, 201), (status, body)


with ThreadPoolExecutor(8) as pool:
    list(pool.map(put_resource, range(RESOURCES)))
import meter_usage
usage, expected_cycles = meter_usage.records(meter, resources=RESOURCES, hours=HOURS, id_prefix="cl")
expected_total = sum(expected_cycles.values())

writes = {"charge": ("/charges", {"amount": "0.01", "mode": "prepaid", "reference": "cluster"}),
          "freeze": ("/freezes", {"amount": "0.01", "reference": "cluster", "expiresInSeconds": 2})}
attempted, acknowledged, answered_by_502, lock = [], set(), [0], threading.Lock()
stop = threading.Event()


def load(worker):
    c = lb()
    n = 0
    while not stop.is_set():
        kind = "charge" if n % 2 == 0 else "freeze"
        idem = f"cluster-{account}-{kind}-{worker}-{n}"
        with lock:
            attempted.append((kind, idem))
        path, body = writes[kind]
        try:
            status, _, _ = call(c, "POST", f"/v1/accounts/{account}{path}", body, idem)
            with lock:
                if status == 201:
                    acknowledged.add(idem)
                elif status in (502, 504):
                    answered_by_502[0] += 1  # the instance died with it: in doubt, retried below
        except Exception:
            c = lb()
        n += 1


threads = [threading.Thread(target=load, args=(w,), daemon=True) for w in range(12)]
for t in threads:
    t.start()
time.sleep(2)
# The usage goes in; the settlement job of whichever instance claims it next settles 5,000 cycles. The victim is that
# instance, killed while its run is unfinished; when the run is too quick to catch, the instance that ran a job last.
ingested_at = time.time()
for part in range(0, len(usage), 5000):
    status, _, body = call(conn, "POST", "/v1/usage-records", {"records": usage[part:part + 5000]})
    assert status == 200 and body["accepted"] == len(usage[part:part + 5000]), (status, body.get("refused"))
by_pid = {str(p.pid): p for p in instances}
victim, caught_settlement, caught_run, deadline = None, False, None, time.time() + 30
while victim is None and time.time() < deadline:
    status, _, recent = call(conn, "GET", "/v1/operator/job-runs?job=settlement&limit=3")
    assert status == 200, (status, recent)
    for r in recent["items"]:
        pid = r["holder"].split(":")[-2]
        if r.get("finishedAt") is None and pid in by_pid and micros(r["startedAt"]) >= ingested_at * 1_000_000 - 2_000_000:
            victim, caught_settlement, caught_run = by_pid[pid], True, r["run"]
            break
        if r.get("finishedAt") and (r.get("items") or 0) > 0 and micros(r["startedAt"]) >= ingested_at * 1_000_000 - 2_000_000:
            deadline = 0  # it finished before a kill could land
    time.sleep(0.05)
if victim is None:
    status, _, recent = call(conn, "GET", "/v1/operator/job-runs?limit=50")
    holders = [r["holder"].split(":")[-2] for r in sorted(recent["items"], key=lambda r: r.get("finishedAt") is not None)]
    victim = next((by_pid[h] for h in holders if h in by_pid), instances[1])
victim_pid = victim.pid
killed_at = time.time()
victim.send_signal(signal.SIGKILL)  # mid-load, possibly mid-job: no chance to finish or release anything
victim.wait()
time.sleep(4)  # the survivors carry the load (nginx leaves the dead instance out)
stop.set()
for t in threads:
    t.join()

# Every request again with its key: the acknowledged ones answer from the ledger (replayed), the in-doubt ones apply once.
conn = lb()
charges = 0
for kind, idem in attempted:
    path, body = writes[kind]
    status, replayed, answer = call(conn, "POST", f"/v1/accounts/{account}{path}", body, idem)
    if status not in (200, 201):
        failures.append(f"{idem}: retry answered {status} {answer}")
    elif idem in acknowledged and replayed != "true":
        failures.append(f"{idem}: acknowledged before the kill but not in the ledger after it")
    charges += kind == "charge"

# The load's freezes (two seconds each) are expired by the jobs of the surviving instances.
deadline = time.time() + 60 + lease_seconds
while True:
    status, _, wallet = call(conn, "GET", f"/v1/accounts/{account}/wallet")
    if wallet.get("frozen") == "0.00" or time.time() > deadline:
        break
    time.sleep(0.5)
if wallet.get("frozen") != "0.00":
    failures.append(f"{wallet.get('frozen')} still frozen a minute after every freeze's deadline: the freeze-expiry job stopped")
expected_cash = 10_000_000 - charges
if int(wallet["cash"].replace(".", "")) != expected_cash:
    failures.append(f"cash {wallet['cash']}, expected {expected_cash / 100:.2f}: a charge was lost or applied twice, or a freeze captured")

# Every cycle deducted exactly once, whichever instance settled it (the survivors take the dead run's job over).
month = time.strftime("%Y-%m", time.gmtime(time.time() + 8 * HOUR))  # deduction month in Asia/Shanghai
deadline = time.time() + 120
while True:
    status, _, bill = call(conn, "GET", f"/v1/accounts/{meter}/bills/{month}")
    assert status == 200, (status, bill)
    if bill["postpaid"]["cycles"] >= len(expected_cycles) or time.time() > deadline:
        break
    time.sleep(1)
lines, cursor = 0, None
while True:
    status, _, page = call(conn, "GET", f"/v1/accounts/{meter}/bills/{month}/lines?limit=200" + (f"&cursor={cursor}" if cursor else ""))
    assert status == 200, (status, page)
    lines += len(page["items"])
    cursor = page.get("nextCursor")
    if not cursor:
        break
status, _, meter_wallet = call(conn, "GET", f"/v1/accounts/{meter}/wallet")
if bill["postpaid"]["cycles"] != len(expected_cycles):
    failures.append(f"{bill['postpaid']['cycles']} cycles settled, expected {len(expected_cycles)}")
if lines != 2 * len(expected_cycles):
    failures.append(f"{lines} bill lines, expected {2 * len(expected_cycles)}: a cycle settled twice or not at all")
if Decimal(bill["total"]) != expected_total or Decimal(meter_wallet["cash"]) != Decimal("1000000.00") - expected_total:
    failures.append(f"bill total {bill['total']}, cash {meter_wallet['cash']}, expected {expected_total} deducted once")

# No job ran on two instances at once.
jobs = ["freeze_expiry", "channel_credentials", "recharge_expiry", "channel_refunds", "settlement", "order_expiry", "prepaid_terms",
        "notices", "webhooks"]
all_runs = []
for job in jobs:  # the last thousand runs of each job are kept
    status, _, page = call(conn, "GET", f"/v1/operator/job-runs?job={job}&limit=1000")
    assert status == 200, (status, page)
    all_runs += page["items"]



runs_by_job = {}
for r in all_runs:
    runs_by_job.setdefault(r["job"], []).append(r)
overlaps, takeovers, victim_runs, after_kill = [], 0, 0, 0
for job, runs in runs_by_job.items():
    runs.sort(key=lambda r: r["run"])
    for earlier, later in zip(runs, runs[1:]):
        if later["run"] != earlier["run"] + 1:
            overlaps.append(f"{job}: run {later['run']} follows run {earlier['run']}")
        start = micros(later["startedAt"])
        if earlier.get("finishedAt"):
            if start < micros(earlier["finishedAt"]):
                overlaps.append(f"{job} run {later['run']} ({later['holder']}) started before run {earlier['run']} ({earlier['holder']}) finished")
        else:
            takeovers += 1
            if start < micros(earlier["startedAt"]) + lease_seconds * 1_000_000 - 1_000:
                overlaps.append(f"{job} run {later['run']} started while run {earlier['run']}'s lease still held")
    for r in runs:
        if f":{victim_pid}:" in r["holder"]:
            victim_runs += 1
        elif micros(r["startedAt"]) > killed_at * 1_000_000:
            after_kill += 1
failures += overlaps
if victim_runs == 0:
    failures.append("the killed instance never ran a job: the test shows nothing about taking over")
if after_kill == 0:
    failures.append("no job ran on the surviving instances after the kill")
settlement_runs = {r["run"]: r for r in runs_by_job.get("settlement", [])}
if caught_settlement and settlement_runs.get(caught_run, {}).get("finishedAt"):
    caught_settlement = False  # it finished in the moment between being seen and the kill
elif caught_settlement and not any(n > caught_run for n in settlement_runs):
    failures.append("the killed instance's settlement run was not taken over by a survivor")

for proc in instances:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
for proc in instances:
    proc.wait(timeout=30)
nginx.send_signal(signal.SIGQUIT)
nginx.wait(timeout=30)
verify = subprocess.run([bin_path, "verify", "--database", database], capture_output=True, text=True)
if verify.returncode != 0:
    failures.append("coffer verify failed: " + verify.stdout)
shutil.rmtree(work, ignore_errors=True)

total_runs = sum(len(r) for r in runs_by_job.values())
print(f"cluster test: 3 instances behind nginx, instance pid {victim_pid} killed with SIGKILL under load; "
      f"{len(attempted)} writes ({len(acknowledged)} acknowledged, {answered_by_502[0]} answered 502 and retried), "
      f"each applied exactly once; every freeze expired")
print(f"cluster test: {total_runs} job runs, {victim_runs} by the killed instance, {after_kill} on the survivors after the kill, "
      f"{takeovers} unfinished run(s) taken over after the lease ran out, none overlapping")
print(f"cluster test: {len(expected_cycles)} cycles of usage, " + ("the instance settling them killed mid-run, " if caught_settlement else
      "settled before a kill could land, ") + f"each deducted exactly once ({bill['total']})")
for f in failures[:20]:
    print("FAIL", f)
print(f"cluster: {0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
