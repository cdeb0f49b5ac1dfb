#!/usr/bin/env python3
"""Crash safety of the ledger (SPEC section 2): kill -9 the server in the middle of a charge load, restart it, retry every
request with its idempotency key, and check that every acknowledged charge is in the ledger exactly once, that nothing was
applied twice, and that `coffer verify` passes. Then the same for settlement (B2): kill -9 the server in the middle of a
settlement run, restart, run again, and check that every cycle was deducted exactly once.

Usage: crash-test.py BIN [--database URL]   (default: a fresh SQLite file)
Standard library only."""
import http.client, json, os, re, signal, subprocess, sys, tempfile, threading, time

bin_path = sys.argv[1]
database = sys.argv[sys.argv.index("--database") + 1] if "--database" in sys.argv else None
data_dir = tempfile.mkdtemp(prefix="coffer-crash-")
db_args = ["--data-dir", data_dir] + (["--database", database] if database else [])
label = "postgres" if database else "sqlite"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()


def start():
    log = open(os.path.join(data_dir, "serve.log"), "a")
    # The jobs loop leaves usage alone (a grace period of ten years): the settlement below is the test's own run.
    proc = subprocess.Popen([bin_path, "serve", "--demo", "--port", str(port), "--settlement-grace-seconds", "315360000",
                             "--log-format", "json"] + db_args,
                            stdout=log, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        text = open(os.path.join(data_dir, "serve.log")).read()
        if text.count("platform key:") >= starts[0] + 1:
            starts[0] += 1
            key = re.findall(r"^platform key: (\S+)", text, re.M)[-1]
            account = re.findall(r"^demo account: (\S+)", text, re.M)[-1]
            return proc, key, account
        if proc.poll() is not None:
            sys.exit("server exited:\n" + text)
        time.sleep(0.1)
    sys.exit("server did not start")


starts = [0]


def post(conn, key, path, body, idem):
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Authorization": "Bearer " + key, "Idempotency-Key": idem, "Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.getheader("Idempotent-Replayed"), json.loads(r.read() or b"{}")


def request(conn, key, method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"{}")


def new_account(conn, key, name):
    email = f"{name}-{os.urandom(4).hex()}@example.com"
    status, _, body = post(conn, key, "/v1/accounts", {"type": "personal", "entityName": name, "contactEmail": email,
                                                       "owner": {"email": email, "name": name, "password": "correct horse battery"}},
                           "account-" + email)
    assert status == 201, (status, body)
    return body["account"]["id"]


proc, key, _ = start()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
# An account of its own: the demo account carries demo usage and its deductions.
account = new_account(conn, key, "crash-ledger")
status, _, _ = post(conn, key, f"/v1/accounts/{account}/adjustments",
                    {"amount": "100000.00", "bucket": "cash", "reason": "crash test funding"}, "crash-fund")
assert status == 201, status

acknowledged, attempted, lock = set(), [], threading.Lock()
stop = threading.Event()


def load(worker):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    n = 0
    while not stop.is_set():
        idem = f"crash-{worker}-{n}"
        with lock:
            attempted.append(idem)
        try:
            status, _, _ = post(c, key, f"/v1/accounts/{account}/charges",
                                {"amount": "0.01", "mode": "prepaid", "reference": "crash"}, idem)
            if status == 201:
                with lock:
                    acknowledged.add(idem)
        except Exception:
            return  # the server died under us: this request is in doubt
        n += 1


threads = [threading.Thread(target=load, args=(w,)) for w in range(16)]
for t in threads:
    t.start()
time.sleep(3)
proc.send_signal(signal.SIGKILL)  # no chance to flush or finish anything
proc.wait()
stop.set()
for t in threads:
    t.join()

proc, key, _ = start()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
failures = []
for idem in attempted:
    status, replayed, body = post(conn, key, f"/v1/accounts/{account}/charges",
                                  {"amount": "0.01", "mode": "prepaid", "reference": "crash"}, idem)
    if status not in (200, 201):
        failures.append(f"{idem}: retry answered {status} {body}")
    elif idem in acknowledged and replayed != "true":
        failures.append(f"{idem}: acknowledged before the crash but not in the ledger after it")
conn.request("GET", f"/v1/accounts/{account}/wallet", headers={"Authorization": "Bearer " + key})
wallet = json.loads(conn.getresponse().read())
expected = 10_000_000 - len(attempted)
cash = int(wallet["cash"].replace(".", ""))
if cash != expected:
    failures.append(f"cash is {wallet['cash']}, expected {expected / 100:.2f}: a charge was lost or applied twice")
ledger_summary = (f"{len(acknowledged)} charges acknowledged before SIGKILL, {len(attempted) - len(acknowledged)} in doubt; "
                  "after restart and retries every one is applied exactly once")

# Settlement (B2): 1,000 cycles (100 resources × 10 hours, two components each), a run killed in the middle, a rerun.
from decimal import Decimal
status, _ = request(conn, key, "PUT", "/v1/operator/products/crash-meter",
                    {"name": {"zh": "计量", "en": "Meter"}, "settlementCycle": "hourly", "taxCategory": "cloud_service"})
assert status in (200, 201), status
meter = new_account(conn, key, "crash-settlement")
status, _, _ = post(conn, key, f"/v1/accounts/{meter}/adjustments", {"amount": "100000.00", "bucket": "cash", "reason": "fund"},
                    "crash-meter-fund")
assert status == 201, status
import meter_usage
hour = meter_usage.HOUR
now = int(time.time())
for r in range(100):
    status, _ = request(conn, key, "PUT", f"/v1/accounts/{meter}/resources/res-{r}", {"productId": "crash-meter", "name": f"res-{r}"})
    assert status in (200, 201), status
records, expected_cycles = meter_usage.records(meter, resources=100, hours=10, id_prefix="m")
status, body = request(conn, key, "POST", "/v1/usage-records", {"records": records})
assert status == 200 and body["accepted"] == len(records), (status, body.get("refused"))
expected_total = sum(expected_cycles.values())
until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def settle(idem):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        post(c, key, "/v1/operator/settlement-runs", {"until": until}, idem)
    except Exception:
        pass  # killed under us


runner = threading.Thread(target=settle, args=("crash-run-1",))
runner.start()
time.sleep(float(os.environ.get("COFFER_CRASH_SETTLE_DELAY", "0.4")))
proc.send_signal(signal.SIGKILL)
proc.wait()
runner.join()
proc, key, _ = start()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
month = time.strftime("%Y-%m", time.gmtime(now + 8 * hour))  # deduction month in Asia/Shanghai


def bill():
    status, b = request(conn, key, "GET", f"/v1/accounts/{meter}/bills/{month}")
    assert status == 200, (status, b)
    return b


before = bill()["postpaid"]["cycles"]
status, _, run = post(conn, key, "/v1/operator/settlement-runs", {"until": until}, "crash-run-2")
assert status == 201, (status, run)
after = bill()
status, _, again = post(conn, key, "/v1/operator/settlement-runs", {"until": until}, "crash-run-3")
assert status == 201 and again["cycles"] == 0, (status, again)
lines, cursor = 0, None
while True:
    status, page = request(conn, key, "GET", f"/v1/accounts/{meter}/bills/{month}/lines?limit=200" + (f"&cursor={cursor}" if cursor else ""))
    assert status == 200, (status, page)
    lines += len(page["items"])
    cursor = page.get("nextCursor")
    if not cursor:
        break
status, wallet = request(conn, key, "GET", f"/v1/accounts/{meter}/wallet")
if after["postpaid"]["cycles"] != len(expected_cycles):
    failures.append(f"{after['postpaid']['cycles']} cycles settled, expected {len(expected_cycles)}")
if lines != 2 * len(expected_cycles):
    failures.append(f"{lines} bill lines, expected {2 * len(expected_cycles)}: a cycle settled twice or not at all")
if Decimal(after["total"]) != expected_total:
    failures.append(f"bill total {after['total']}, expected {expected_total}")
if Decimal(wallet["cash"]) != Decimal("100000.00") - expected_total:
    failures.append(f"cash {wallet['cash']}, expected {Decimal('100000.00') - expected_total}: a deduction lost or made twice")
settle_summary = (f"{before} of {len(expected_cycles)} cycles were settled when the run was killed; after the rerun every cycle "
                  f"is deducted exactly once ({after['total']})")

if not database:
    # An online backup of the SQLite database while the server is still running, verified by the command itself.
    backup = subprocess.run([bin_path, "backup", "--to", os.path.join(data_dir, "backup.sqlite")] + db_args, capture_output=True, text=True)
    if backup.returncode != 0:
        failures.append("coffer backup failed: " + backup.stdout + backup.stderr)

proc.send_signal(signal.SIGTERM)
proc.wait(timeout=30)
verify = subprocess.run([bin_path, "verify"] + db_args, capture_output=True, text=True)
if verify.returncode != 0:
    failures.append("coffer verify failed: " + verify.stdout)

import shutil
if os.environ.get("COFFER_LOG_DIR"):  # the test command greps every server's log for secrets (scripts/check-logs.py)
    shutil.copy(os.path.join(data_dir, "serve.log"), os.path.join(os.environ["COFFER_LOG_DIR"], f"crash-{label}.log"))
shutil.rmtree(data_dir, ignore_errors=True)
print(f"crash test ({label}): {ledger_summary}")
print(f"crash test ({label}): {settle_summary}")
for f in failures[:20]:
    print("FAIL", f)
print(f"crash-{label}: {0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
