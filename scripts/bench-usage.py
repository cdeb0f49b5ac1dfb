#!/usr/bin/env python3
"""Usage ingestion (B1) through HTTP, beside PostgreSQL's own COPY of the same rows into the same table shape.

Usage: bench-usage.py BIN --database URL [--records N] [--batch N] [--clients N]
Starts `BIN serve` on the database, registers accounts and resources through the API, pre-builds the request bodies (so
that Python's JSON encoding is not measured), posts them from several threads and prints durable records per second. Then
writes the same rows as CSV and times `\\copy` into `usage_copy (LIKE usage_records INCLUDING ALL)` with psql: the floor of
loading these rows into this table. Standard library only."""
import argparse, http.client, json, os, re, subprocess, sys, tempfile, threading, time

p = argparse.ArgumentParser()
p.add_argument("bin")
p.add_argument("--database", required=True)
p.add_argument("--records", type=int, default=1_000_000)
p.add_argument("--batch", type=int, default=10_000)
p.add_argument("--clients", type=int, default=4)
p.add_argument("--accounts", type=int, default=100)
p.add_argument("--resources", type=int, default=1_000)
a = p.parse_args()

data = tempfile.mkdtemp(prefix="coffer-bench-usage-")
with __import__("socket").socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
log = open(os.path.join(data, "serve.log"), "w+")
proc = subprocess.Popen([a.bin, "serve", "--demo", "--port", str(port), "--data-dir", data, "--database", a.database,
                         "--no-console", "--settlement-grace-seconds", "315360000"], stdout=log, stderr=subprocess.STDOUT)
for _ in range(600):
    log.seek(0)
    text = log.read()
    if "platform key:" in text:
        break
    time.sleep(0.1)
else:
    sys.exit("server did not start:\n" + text)
key = re.search(r"^platform key: (\S+)$", text, re.M).group(1)


def call(conn, method, path, body=None, idem=None):
    headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    if idem:
        headers["Idempotency-Key"] = idem
    conn.request(method, path, body=body if isinstance(body, (bytes, type(None))) else json.dumps(body), headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
run = os.urandom(3).hex()
call(conn, "PUT", "/v1/operator/products/bench-usage",
     {"name": {"zh": "计量", "en": "Meter"}, "settlementCycle": "daily", "taxCategory": "cloud_service"})
accounts = []
for i in range(a.accounts):
    email = f"bench-{run}-{i}@example.com"
    status, body = call(conn, "POST", "/v1/accounts", {"type": "personal", "entityName": "bench", "contactEmail": email,
                                                       "owner": {"email": email, "name": "b", "password": "bench-password"}}, "acc-" + email)
    accounts.append(json.loads(body)["account"]["id"])
resources = []
for r in range(a.resources):
    acc = accounts[r % len(accounts)]
    call(conn, "PUT", f"/v1/accounts/{acc}/resources/res-{r}", {"productId": "bench-usage", "name": f"res-{r}"})
    resources.append((acc, f"res-{r}"))

yesterday = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() - 86400))
end = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() - 82800))
bodies, n = [], 0
while n < a.records:
    records = []
    for _ in range(min(a.batch, a.records - n)):
        acc, res = resources[n % len(resources)]
        records.append({"id": f"u-{run}-{n}", "accountId": acc, "resourceId": res, "component": "cpu" if n % 2 else "disk",
                        "quantity": str(n % 97 + 1), "unit": "h", "unitPrice": "0.01234567", "periodStart": yesterday, "periodEnd": end})
        n += 1
    bodies.append(json.dumps({"records": records}).encode())
print(f"bench usage: {a.records} records in {len(bodies)} requests of {a.batch}, {a.clients} clients, "
      f"{sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB per request")

lock, queue, accepted, latencies = threading.Lock(), list(bodies), [0], []


def client():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    while True:
        with lock:
            if not queue:
                return
            body = queue.pop()
        t0 = time.time()
        status, out = call(c, "POST", "/v1/usage-records", body)
        dt = time.time() - t0
        assert status == 200, (status, out[:300])
        with lock:
            accepted[0] += json.loads(out)["accepted"]
            latencies.append(dt)


started = time.time()
threads = [threading.Thread(target=client) for _ in range(a.clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.time() - started
latencies.sort()
http_rate = accepted[0] / elapsed
print(f"http: {accepted[0]} records accepted in {elapsed:.2f} s = {http_rate:,.0f} records/s durable "
      f"(request p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms)")
proc.terminate()
proc.wait(30)

# The floor: the same rows (as stored) copied into a table of the same shape, indexes and checks included.
csv_path = os.path.join(data, "rows.csv")
subprocess.run(["psql", a.database, "-qAt", "-c", "DROP TABLE IF EXISTS usage_copy", "-c",
                "CREATE TABLE usage_copy (LIKE usage_records INCLUDING ALL)", "-c",
                f"\\copy (SELECT * FROM usage_records WHERE id LIKE 'u-{run}-%') TO '{csv_path}' WITH (FORMAT csv)"], check=True)
t0 = time.time()
subprocess.run(["psql", a.database, "-qAt", "-c", f"\\copy usage_copy FROM '{csv_path}' WITH (FORMAT csv)"], check=True)
copy_elapsed = time.time() - t0
copy_rate = accepted[0] / copy_elapsed
subprocess.run(["psql", a.database, "-qAt", "-c", "DROP TABLE usage_copy"], check=True)
print(f"copy: the same {accepted[0]} rows by psql \\copy in {copy_elapsed:.2f} s = {copy_rate:,.0f} rows/s")
print(f"RESULT http_records_per_s={http_rate:.0f} copy_rows_per_s={copy_rate:.0f} ratio={http_rate / copy_rate:.2f}")
import shutil
shutil.rmtree(data, ignore_errors=True)
