#!/usr/bin/env python3
"""A loopback stand-in for Alipay's open-platform gateway, for Coffer's end-to-end tests. Signing and verification come
from the PyPI package `python-alipay-sdk` (see alipay_tool.py), not from Coffer.

Usage: alipay_fake.py SETTINGS.json   (prints "port N" once listening on 127.0.0.1)
SETTINGS: app_id, seller_id, app_private_pem, app_public_pem, alipay_private_pem, alipay_public_pem.

  POST /gateway.do     alipay.trade.precreate (checks the app's RSA2 signature, answers a signed qr_code) and
                       alipay.trade.query (TRADE_SUCCESS once paid, WAIT_BUYER_PAY before, ACQ.TRADE_NOT_EXIST if unknown)
  POST /fake/pay       {"out_trade_no", "micros", optional "amount", "trade_status"}: marks the trade paid and returns the
                       notification Alipay would send, as {"body"} (form-encoded)
  POST /fake/stats     {"precreate_calls": N, "query_calls": N}
"""
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alipay_tool import client, gateway, notification  # noqa: E402

settings = json.load(open(sys.argv[1]))
alipay = gateway(settings)
merchant = client(settings)
orders = {}
stats = {"precreate_calls": 0, "query_calls": 0}


def signed_answer(response_type, inner):
    """Alipay's synchronous answer: the SDK's client side must accept it before it is sent."""
    raw_inner = json.dumps(inner, ensure_ascii=False, separators=(",", ":"))
    raw = '{"%s":%s,"sign":"%s"}' % (response_type, raw_inner, alipay._sign(raw_inner))
    merchant._verify_and_return_sync_response(raw, response_type)
    return raw


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, text, content_type="application/json;charset=utf-8"):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        url = urlparse(self.path)
        if url.path == "/gateway.do":
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            params.update(dict(parse_qsl(raw, keep_blank_values=True)))
            return self.gateway_call(params)
        if url.path == "/fake/pay":
            return self.pay(json.loads(raw))
        if url.path == "/fake/stats":
            return self.send(200, json.dumps(stats))
        self.send(404, "{}")

    def gateway_call(self, params):
        method = params.get("method", "")
        response_type = method.replace(".", "_") + "_response"
        sign = params.pop("sign", "")
        message = "&".join("%s=%s" % kv for kv in sorted(params.items()))
        if params.get("app_id") != settings["app_id"] or params.get("sign_type") != "RSA2" \
                or not alipay._verify(message, sign):
            bad = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature", "sub_msg": "验签出错"}
            return self.send(200, json.dumps({response_type: bad}, ensure_ascii=False))
        biz = json.loads(params.get("biz_content", "{}"))
        if method == "alipay.trade.precreate":
            return self.precreate(params, biz)
        if method == "alipay.trade.query":
            return self.query(biz)
        self.send(200, json.dumps({response_type: {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.UNSUPPORTED"}}))

    def precreate(self, params, biz):
        stats["precreate_calls"] += 1
        number = biz.get("out_trade_no", "")
        known = orders.get(number)
        if not params.get("notify_url") or not biz.get("subject") or not biz.get("total_amount"):
            inner = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.missing-parameter"}
        elif known and known["total_amount"] != biz["total_amount"]:
            inner = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.CONTEXT_INCONSISTENT", "sub_msg": "交易信息被篡改"}
        else:
            if not known:
                orders[number] = {"total_amount": biz["total_amount"], "paid": False, "trade_no": None}
            inner = {"code": "10000", "msg": "Success", "out_trade_no": number,
                     "qr_code": "https://qr.alipay.com/bax0" + number[-12:]}
        self.send(200, signed_answer("alipay_trade_precreate_response", inner))

    def query(self, biz):
        stats["query_calls"] += 1
        order = orders.get(biz.get("out_trade_no", ""))
        if not order:
            inner = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}
        elif order["paid"]:
            inner = {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], "trade_no": order["trade_no"],
                     "trade_status": "TRADE_SUCCESS", "total_amount": order["paid_amount"]}
        else:
            inner = {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], "trade_status": "WAIT_BUYER_PAY",
                     "total_amount": order["total_amount"]}
        self.send(200, signed_answer("alipay_trade_query_response", inner))

    def pay(self, request):
        number = request["out_trade_no"]
        order = orders.get(number)
        if not order:
            return self.send(404, json.dumps({"error": "TRADE_NOT_EXIST"}))
        amount = request.get("amount", order["total_amount"])
        order.update(paid=True, paid_amount=amount, trade_no=order["trade_no"] or "2026112322001" + number[-12:])
        body = notification(settings, number, amount, order["trade_no"], int(request["micros"]),
                            request.get("trade_status", "TRADE_SUCCESS"))
        self.send(200, json.dumps({"body": body}))


signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("port %d" % server.server_address[1], flush=True)
server.serve_forever()
