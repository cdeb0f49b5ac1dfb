#!/usr/bin/env python3
"""Crash safety of the ledger (SPEC section 2): kill -9 the server in the middle of a charge load, restart it, retry every
request with its idempotency key, and check that every acknowledged charge is in the ledger exactly once, that nothing was
applied twice, and that `coffer verify` passes.

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
    proc = subprocess.Popen([bin_path, "serve", "--demo", "--port", str(port)] + db_args, stdout=log, stderr=log)
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


proc, key, account = start()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
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
proc.send_signal(signal.SIGTERM)
proc.wait(timeout=30)
verify = subprocess.run([bin_path, "verify"] + db_args, capture_output=True, text=True)
if verify.returncode != 0:
    failures.append("coffer verify failed: " + verify.stdout)

import shutil
shutil.rmtree(data_dir, ignore_errors=True)
print(f"crash test ({label}): {len(acknowledged)} charges acknowledged before SIGKILL, "
      f"{len(attempted) - len(acknowledged)} in doubt; after restart and retries every one is applied exactly once")
for f in failures[:20]:
    print("FAIL", f)
print(f"crash-{label}: {0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
