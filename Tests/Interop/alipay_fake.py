#!/usr/bin/env python3
"""A loopback stand-in for Alipay's open-platform gateway, for Coffer's end-to-end tests. Signing and verification come
from the PyPI package `python-alipay-sdk` (see alipay_tool.py), not from Coffer.

Usage: alipay_fake.py SETTINGS.json   (prints "port N" once listening on 127.0.0.1)
SETTINGS: app_id, seller_id, app_private_pem, app_public_pem, alipay_private_pem, alipay_public_pem.

  POST /gateway.do     alipay.trade.precreate (checks the app's RSA2 signature, answers a signed qr_code) and
                       alipay.trade.query (TRADE_SUCCESS once paid, WAIT_BUYER_PAY before, ACQ.TRADE_NOT_EXIST if unknown)
                       alipay.trade.refund (out_request_no refunds once; more than was paid is refused) and
                       alipay.trade.fastpay.refund.query (REFUND_SUCCESS, or no refund_status for an unknown refund)
  POST /fake/pay       {"out_trade_no", "micros", optional "amount", "trade_status", "buyer_id"}: marks the trade paid and
                       returns the notification Alipay would send, as {"body"} (form-encoded)
  POST /fake/refund-mode  {"fail_next": N}: answer that many refunds with ACQ.SYSTEM_ERROR first
  POST /fake/stats     {"precreate_calls": N, "query_calls": N, "refund_calls": N, "refund_queries": N}
"""
import json
import os
import signal
import sys
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alipay_tool import client, gateway, notification  # noqa: E402

settings = json.load(open(sys.argv[1]))
alipay = gateway(settings)
merchant = client(settings)
orders = {}
refunds = {}
stats = {"precreate_calls": 0, "query_calls": 0, "refund_calls": 0, "refund_queries": 0}
refund_mode = {"fail_next": 0}


def cents(text):
    return int(Decimal(text) * 100)


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
        if url.path == "/fake/refund-mode":
            refund_mode.update(json.loads(raw))
            return self.send(200, json.dumps(refund_mode))
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
        if method == "alipay.trade.refund":
            return self.refund(biz)
        if method == "alipay.trade.fastpay.refund.query":
            return self.query_refund(biz)
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
                     "trade_status": "TRADE_SUCCESS", "total_amount": order["paid_amount"], "buyer_user_id": order["buyer_id"]}
        else:
            inner = {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], "trade_status": "WAIT_BUYER_PAY",
                     "total_amount": order["total_amount"]}
        self.send(200, signed_answer("alipay_trade_query_response", inner))

    def refund(self, biz):
        stats["refund_calls"] += 1
        number, request_no = biz.get("out_trade_no", ""), biz.get("out_request_no", "")
        order = orders.get(number)
        if refund_mode["fail_next"] > 0:
            refund_mode["fail_next"] -= 1
            inner = {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "ACQ.SYSTEM_ERROR", "sub_msg": "系统错误"}
        elif not order or not order["paid"]:
            inner = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}
        elif not request_no or not biz.get("refund_amount"):
            inner = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.missing-parameter"}
        elif request_no in refunds:
            known = refunds[request_no]
            if known["out_trade_no"] != number or known["refund_amount"] != biz["refund_amount"]:
                inner = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.DISCORDANT_REPEAT_REQUEST", "sub_msg": "请求信息不一致"}
            else:
                inner = self.refund_answer(number, order, "N")
        elif sum(cents(r["refund_amount"]) for r in refunds.values() if r["out_trade_no"] == number) \
                + cents(biz["refund_amount"]) > cents(order["paid_amount"]):
            inner = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "sub_msg": "退款金额超限"}
        else:
            refunds[request_no] = {"out_trade_no": number, "refund_amount": biz["refund_amount"]}
            inner = self.refund_answer(number, order, "Y")
        self.send(200, signed_answer("alipay_trade_refund_response", inner))

    def refund_answer(self, number, order, fund_change):
        total = sum(cents(r["refund_amount"]) for r in refunds.values() if r["out_trade_no"] == number)
        return {"code": "10000", "msg": "Success", "trade_no": order["trade_no"], "out_trade_no": number,
                "buyer_logon_id": "159****5620", "fund_change": fund_change, "refund_fee": "%d.%02d" % divmod(total, 100),
                "gmt_refund_pay": "2026-11-23 10:05:00", "buyer_user_id": order["buyer_id"]}

    def query_refund(self, biz):
        stats["refund_queries"] += 1
        number, request_no = biz.get("out_trade_no", ""), biz.get("out_request_no", "")
        order, known = orders.get(number), refunds.get(request_no)
        if not order:
            inner = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}
        elif not known or known["out_trade_no"] != number:
            inner = {"code": "10000", "msg": "Success", "out_trade_no": number, "out_request_no": request_no}
        else:
            inner = {"code": "10000", "msg": "Success", "trade_no": order["trade_no"], "out_trade_no": number,
                     "out_request_no": request_no, "total_amount": order["paid_amount"],
                     "refund_amount": known["refund_amount"], "refund_status": "REFUND_SUCCESS"}
        self.send(200, signed_answer("alipay_trade_fastpay_refund_query_response", inner))

    def pay(self, request):
        number = request["out_trade_no"]
        order = orders.get(number)
        if not order:
            return self.send(404, json.dumps({"error": "TRADE_NOT_EXIST"}))
        amount = request.get("amount", order["total_amount"])
        order.update(paid=True, paid_amount=amount, trade_no=order["trade_no"] or "2026112322001" + number[-12:],
                     buyer_id=request.get("buyer_id", "2088102177846875"))
        body = notification(settings, number, amount, order["trade_no"], int(request["micros"]),
                            request.get("trade_status", "TRADE_SUCCESS"), buyer_id=order["buyer_id"])
        self.send(200, json.dumps({"body": body}))


signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("port %d" % server.server_address[1], flush=True)
server.serve_forever()
