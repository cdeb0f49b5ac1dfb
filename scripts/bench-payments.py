#!/usr/bin/env python3
"""Prepares order payments for scripts/payment-load.lua against a running server: a product with a monthly plan, A funded
accounts each holding one multi-use cash coupon, and N unpaid orders spread over them. Prints the payments file's path.
Usage: bench-payments.py BASE_URL PLATFORM_KEY OUT_FILE [--orders N] [--accounts A]"""
import argparse, concurrent.futures, json, sys, time, urllib.request

p = argparse.ArgumentParser()
p.add_argument("base"); p.add_argument("key"); p.add_argument("out")
p.add_argument("--orders", type=int, default=40000); p.add_argument("--accounts", type=int, default=64)
a = p.parse_args()
run = str(int(time.time() * 1000))

def call(method, path, body=None, key=None):
    req = urllib.request.Request(a.base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + a.key, "Content-Type": "application/json",
                                          **({"Idempotency-Key": key} if key else {})})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}")

call("PUT", "/v1/operator/products/bench-vps", {"name": {"zh": "轻量", "en": "VPS"}, "settlementCycle": "monthly",
                                               "taxCategory": "cloud_service", "plans": {"1C1G": "10.00"}})
accounts = []
for i in range(a.accounts):
    acc = call("POST", "/v1/accounts", {"type": "personal", "entityName": "bench %d" % i, "contactEmail": "b@example.com",
               "owner": {"email": "pay-%s-%d@example.com" % (run, i), "name": "b", "password": "bench password 1"}},
               key="acc-%s-%d" % (run, i))["account"]["id"]
    call("POST", "/v1/accounts/%s/adjustments" % acc, {"amount": "10000000.00", "bucket": "cash", "reason": "bench"}, key="fund-%s" % acc)
    accounts.append(acc)
until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400 * 30))
granted = call("POST", "/v1/operator/coupons", {"kind": "cash", "value": "9999999.00", "singleUse": False, "validUntil": until,
                                               "accountIds": accounts}, key="coupons-" + run)
coupon = {c["accountId"]: c["id"] for c in granted["coupons"]}

def order(i):
    acc = accounts[i % len(accounts)]
    o = call("POST", "/v1/accounts/%s/orders" % acc, {"type": "new", "productId": "bench-vps", "specification": "1C1G",
             "durationMonths": 1}, key="o-%s-%d" % (run, i))
    return "%s %s %s" % (acc, o["id"], coupon[acc])

started = time.time()
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    lines = list(pool.map(order, range(a.orders)))
with open(a.out, "w") as f:
    f.write("\n".join(lines) + "\n")
print("prepared %d orders over %d accounts in %.1f s" % (a.orders, a.accounts, time.time() - started), file=sys.stderr)
