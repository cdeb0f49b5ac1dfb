#!/usr/bin/env python3
"""A loopback stand-in for WeChat Pay's API v3 gateway, for Coffer's end-to-end tests. Signing, verification and
encryption come from the PyPI package `wechatpayv3` (and `cryptography`), not from Coffer.

Usage: wechatpay_fake.py SETTINGS.json   (prints "port N" once listening on 127.0.0.1)
SETTINGS: merchant_id, app_id, merchant_public_pem, platform_private_pem, platform_serial, apiv3_key.

  POST /v3/pay/transactions/native   checks the merchant's Authorization header like WeChat Pay, answers a signed code_url;
                                     the same out_trade_no with the same content answers the same code_url
  GET  /v3/pay/transactions/out-trade-no/{no}?mchid=   查询订单: signed transaction (NOTPAY until /fake/pay), 404 if unknown
  POST /v3/refund/domestic/refunds   申请退款: checks the Authorization header, the order (paid, total, refundable left)
                                     and out_refund_no (same content answers the same refund, other content is refused);
                                     answers a signed refund whose status is the refund mode's (SUCCESS by default)
  GET  /v3/refund/domestic/refunds/{out_refund_no}   查询单笔退款: signed; a PROCESSING refund is SUCCESS when queried
  POST /fake/stats                   {"native_calls": N, "refund_calls": N, ...}, how many requests arrived
  POST /fake/pay                     {"out_trade_no", "timestamp", optional "amount", "payer"}: the payment notification
                                     WeChat Pay would send for that order, as {"headers", "body"}; "payer" is the openid
  GET  /v3/certificates              下载平台证书: the certificates of the keys made by /fake/rotate, each encrypted with
                                     the APIv3 key (as wechatpayv3's client decrypts them), the answer signed by the newest
  POST /fake/rotate                  {optional "encrypt_with"}: a new platform key and certificate; from now on everything is
                                     signed with it; "encrypt_with" encrypts its certificate with another key (a forgery)
  POST /fake/refund-mode             {"status": "SUCCESS"|"PROCESSING"|"CLOSED"|"ABNORMAL", "fail_next": N}: how the next
                                     refunds are answered; fail_next answers that many with HTTP 500 SYSTEM_ERROR first
"""
import datetime
import json
import os
import re
import signal
import sys
import threading
import uuid
from base64 import b64decode, b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from wechatpayv3.utils import aes_decrypt, load_certificate, load_private_key, load_public_key, rsa_sign

settings = json.load(open(sys.argv[1]))
merchant_public = load_public_key(settings["merchant_public_pem"])
# (serial, private key, certificate PEM or None, key its certificate is encrypted with); the last one signs.
platform_keys = [(settings["platform_serial"], load_private_key(settings["platform_private_pem"]), None, None)]
orders = {}
refunds = {}
stats = {"native_calls": 0, "refund_calls": 0, "refund_queries": 0}
refund_mode = {"status": "SUCCESS", "fail_next": 0}


def signed_headers(body, timestamp):
    nonce = uuid.uuid4().hex.upper()
    serial, key, _, _ = platform_keys[-1]
    signature = rsa_sign(key, "%s\n%s\n%s\n" % (timestamp, nonce, body))
    return {"Wechatpay-Timestamp": str(timestamp), "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature,
            "Wechatpay-Serial": serial}


def rotate(encrypt_with=None):
    """A new platform key with a self-made certificate, as WeChat Pay issues them (serial = the certificate's, in hex)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    serial = uuid.uuid4().int >> 1
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(serial).not_valid_before(datetime.datetime(2020, 1, 1))
                   .not_valid_after(datetime.datetime(2040, 1, 1)).sign(key, SHA256()))
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    assert load_certificate(pem) is not None
    platform_keys.append(("%X" % serial, key, pem, encrypt_with or settings["apiv3_key"]))
    return {"serial": "%X" % serial}


def certificate_list():
    data = []
    for serial, _, pem, encrypt_key in platform_keys:
        if pem is None:
            continue
        nonce = uuid.uuid4().hex[:12]
        ciphertext = b64encode(AESGCM(encrypt_key.encode()).encrypt(nonce.encode(), pem.encode(), b"certificate")).decode()
        if encrypt_key == settings["apiv3_key"]:
            assert aes_decrypt(nonce, ciphertext, "certificate", settings["apiv3_key"]) == pem
        data.append({"serial_no": serial, "effective_time": "2020-01-01T00:00:00+08:00", "expire_time": "2040-01-01T00:00:00+08:00",
                     "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": "certificate",
                                             "ciphertext": ciphertext}})
    return {"data": data}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, payload, signed=True):
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if signed:
            for k, v in signed_headers(body, self.request_timestamp or 0).items():
                self.send_header(k, v)
        data = body.encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self, raw):
        header = self.headers.get("Authorization", "")
        schema, _, params = header.partition(" ")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        sign_str = "%s\n%s\n%s\n%s\n%s\n" % (self.command, self.path, fields.get("timestamp"), fields.get("nonce_str"), raw)
        try:
            if schema != "WECHATPAY2-SHA256-RSA2048" or fields.get("mchid") != settings["merchant_id"]:
                raise InvalidSignature()
            merchant_public.verify(b64decode(fields.get("signature", "")), sign_str.encode(), PKCS1v15(), SHA256())
        except (InvalidSignature, ValueError):
            self.answer(401, {"code": "SIGN_ERROR", "message": "签名错误"}, signed=False)
            return False
        self.request_timestamp = int(fields["timestamp"])
        return True

    def do_GET(self):
        self.request_timestamp = None
        if self.path == "/v3/certificates":
            stats["certificate_calls"] = stats.get("certificate_calls", 0) + 1
            if self.authorized(""):
                self.answer(200, certificate_list())
            return
        refund = re.fullmatch(r"/v3/refund/domestic/refunds/([^?/]+)", self.path)
        if refund:
            return self.query_refund(refund.group(1))
        stats["query_calls"] = stats.get("query_calls", 0) + 1
        match = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^?]+)\?mchid=(\d+)", self.path)
        if not match:
            return self.answer(404, {"code": "NOT_FOUND", "message": self.path}, signed=False)
        if not self.authorized(""):
            return
        order = orders.get(match.group(1))
        if not order:
            return self.answer(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
        self.answer(200, order.get("paid") or {
            "appid": order["appid"], "mchid": order["mchid"], "out_trade_no": order["out_trade_no"],
            "trade_state": "NOTPAY", "trade_state_desc": "订单未支付", "amount": {"total": order["amount"]["total"], "currency": "CNY"}})

    def do_POST(self):
        self.request_timestamp = None
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        if self.path == "/v3/pay/transactions/native":
            return self.native(raw)
        if self.path == "/fake/pay":
            return self.pay(json.loads(raw))
        if self.path == "/v3/refund/domestic/refunds":
            return self.refund(raw)
        if self.path == "/fake/rotate":
            return self.answer(200, rotate(json.loads(raw or "{}").get("encrypt_with")), signed=False)
        if self.path == "/fake/refund-mode":
            refund_mode.update(json.loads(raw))
            return self.answer(200, refund_mode, signed=False)
        if self.path == "/fake/stats":
            return self.answer(200, stats, signed=False)
        self.answer(404, {"code": "NOT_FOUND", "message": self.path}, signed=False)

    def native(self, raw):
        stats["native_calls"] += 1
        if not self.authorized(raw):
            return
        order = json.loads(raw)
        if order.get("appid") != settings["app_id"] or order.get("mchid") != settings["merchant_id"] \
                or order.get("amount", {}).get("currency") != "CNY" or not order.get("notify_url"):
            return self.answer(400, {"code": "PARAM_ERROR", "message": "参数错误"}, signed=False)
        known = orders.get(order["out_trade_no"])
        if known and {k: v for k, v in known.items() if k != "paid"} != order:
            return self.answer(400, {"code": "INVALID_REQUEST", "message": "201 商户订单号重复"}, signed=False)
        orders[order["out_trade_no"]] = dict(order)
        self.answer(200, {"code_url": "weixin://wxpay/bizpayurl?pr=" + order["out_trade_no"][-12:]})

    def refund(self, raw):
        stats["refund_calls"] += 1
        if not self.authorized(raw):
            return
        if refund_mode["fail_next"] > 0:
            refund_mode["fail_next"] -= 1
            return self.answer(500, {"code": "SYSTEM_ERROR", "message": "系统错误"}, signed=False)
        request = json.loads(raw)
        amount = request.get("amount", {})
        number = request.get("out_refund_no", "")
        if not number or not request.get("out_trade_no") or amount.get("currency") != "CNY" \
                or not isinstance(amount.get("refund"), int) or amount["refund"] <= 0:
            return self.answer(400, {"code": "PARAM_ERROR", "message": "参数错误"}, signed=False)
        known = refunds.get(number)
        if known:
            if known["request"] != request:
                return self.answer(400, {"code": "INVALID_REQUEST", "message": "退款单号重复，请求内容不一致"}, signed=False)
            return self.answer(200, known["answer"])
        order = orders.get(request["out_trade_no"])
        if not order or not order.get("paid"):
            return self.answer(404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"}, signed=False)
        paid_total = order["paid"]["amount"]["total"]
        already = sum(r["request"]["amount"]["refund"] for r in refunds.values()
                      if r["request"]["out_trade_no"] == request["out_trade_no"] and r["answer"]["status"] != "CLOSED")
        if amount.get("total") != paid_total or already + amount["refund"] > paid_total:
            return self.answer(400, {"code": "INVALID_REQUEST", "message": "退款金额超过订单可退金额或订单金额不符"}, signed=False)
        answer = {
            "refund_id": "5030" + str(abs(hash(number)))[:16].rjust(16, "0"), "out_refund_no": number,
            "transaction_id": order["paid"]["transaction_id"], "out_trade_no": request["out_trade_no"], "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱", "create_time": "2026-11-23T10:05:00+08:00", "status": refund_mode["status"],
            "funds_account": "AVAILABLE",
            "amount": {"total": paid_total, "refund": amount["refund"], "payer_total": paid_total, "payer_refund": amount["refund"],
                       "settlement_total": paid_total, "settlement_refund": amount["refund"], "discount_refund": 0,
                       "currency": "CNY", "refund_fee": 0},
        }
        refunds[number] = {"request": request, "answer": answer}
        self.answer(200, answer)

    def query_refund(self, number):
        stats["refund_queries"] += 1
        if not self.authorized(""):
            return
        known = refunds.get(number)
        if not known:
            return self.answer(404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
        if known["answer"]["status"] == "PROCESSING":
            known["answer"]["status"] = "SUCCESS"
        self.answer(200, known["answer"])

    def pay(self, request):
        order = orders.get(request["out_trade_no"])
        if not order:
            return self.answer(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}, signed=False)
        total = request.get("amount", order["amount"]["total"])
        transaction = {
            "appid": order["appid"], "mchid": order["mchid"], "out_trade_no": order["out_trade_no"],
            "transaction_id": "42000000012026" + str(abs(hash(order["out_trade_no"])))[:14].rjust(14, "0"),
            "trade_type": "NATIVE", "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
            "success_time": "2026-11-23T10:00:00+08:00", "payer": {"openid": request.get("payer", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")},
            "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
        }
        order["paid"] = transaction
        plain = json.dumps(transaction, ensure_ascii=False, separators=(",", ":"))
        nonce = uuid.uuid4().hex[:12]
        key = settings["apiv3_key"]
        ciphertext = b64encode(AESGCM(key.encode()).encrypt(nonce.encode(), plain.encode(), b"transaction")).decode()
        assert aes_decrypt(nonce, ciphertext, "transaction", key) == plain
        body = json.dumps({
            "id": str(uuid.uuid4()), "create_time": "2026-11-23T10:00:00+08:00", "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
            "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
                         "associated_data": "transaction", "nonce": nonce},
        }, ensure_ascii=False, separators=(",", ":"))
        self.answer(200, {"headers": signed_headers(body, int(request["timestamp"])), "body": body}, signed=False)


# The test runner may start us with SIGTERM blocked; unblock it, and also leave when the runner's end of stdin closes, so
# that a killed test run leaves no gateway behind.
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("port %d" % server.server_address[1], flush=True)
server.serve_forever()
