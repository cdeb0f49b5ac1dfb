#!/usr/bin/env python3
"""The other half of Coffer's Alipay tests, written with the PyPI package `python-alipay-sdk` (module `alipay`), so that
Coffer's RSA2 signing and verification are checked against an implementation nobody on this project wrote.

Usage: alipay_tool.py COMMAND < request.json > answer.json
  keys          new app and Alipay RSA-2048 key pairs (PEM)
  sign-request  the SDK's signature over a request's parameters (signed with the app key), to compare with Coffer's
  notify        an asynchronous payment notification as Alipay sends it (form body signed with the Alipay key); the
                SDK's own `verify` checks it before it is returned
"""
import json
import sys
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from alipay import AliPay
from cryptography.hazmat.primitives import serialization
from interop_keys import key_pair

BEIJING = timezone(timedelta(hours=8))


def keys(_):
    # PKCS#1 on purpose: Alipay's key tool prints PKCS#1 for most languages, and Coffer must read it.
    ap, apub = key_pair(serialization.PrivateFormat.TraditionalOpenSSL)
    lp, lpub = key_pair(serialization.PrivateFormat.TraditionalOpenSSL)
    return {"app_private_pem": ap, "app_public_pem": apub, "alipay_private_pem": lp, "alipay_public_pem": lpub}


def client(s):
    """The merchant's side as the SDK sees it: signs with the app key, verifies with the Alipay key."""
    return AliPay(appid=s["app_id"], app_private_key_string=s["app_private_pem"],
                  alipay_public_key_string=s["alipay_public_pem"], sign_type="RSA2")


def gateway(s):
    """Alipay's side: the same SDK with the keys swapped signs as Alipay and verifies the app's signatures."""
    return AliPay(appid=s["app_id"], app_private_key_string=s["alipay_private_pem"],
                  alipay_public_key_string=s["app_public_pem"], sign_type="RSA2")


def beijing(micros):
    return datetime.fromtimestamp(micros / 1e6, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def sign_request(req):
    params = dict(req["params"])
    params.pop("sign", None)
    signed = client(req).sign_data(params)
    sign = dict(pair.split("=", 1) for pair in signed.split("&"))["sign"]
    from urllib.parse import unquote_plus
    return {"sign": unquote_plus(sign)}


def notification(s, out_trade_no, total_amount, trade_no, micros, trade_status="TRADE_SUCCESS", app_id=None,
                 buyer_id="2088102177846875"):
    """A signed notification form body; the SDK's client side verifies it as a self-check."""
    params = {
        "gmt_create": beijing(micros - 60_000_000), "charset": "utf-8", "seller_id": s.get("seller_id", "2088102177846880"),
        "notify_time": beijing(micros), "subject": "账户充值 " + out_trade_no, "buyer_id": buyer_id,
        "invoice_amount": total_amount, "version": "1.0", "notify_id": uuid.uuid4().hex,
        "notify_type": "trade_status_sync", "out_trade_no": out_trade_no, "total_amount": total_amount,
        "trade_status": trade_status, "trade_no": trade_no, "auth_app_id": app_id or s["app_id"],
        "receipt_amount": total_amount, "point_amount": "0.00", "app_id": app_id or s["app_id"],
        "buyer_pay_amount": total_amount, "gmt_payment": beijing(micros - 30_000_000),
    }
    sign = gateway(s)._sign("&".join("%s=%s" % kv for kv in sorted(params.items())))
    assert client(s).verify(dict(params), sign), "the SDK refused its own notification"
    params["sign_type"] = "RSA2"
    params["sign"] = sign
    return urlencode(params)


def notify(req):
    return {"body": notification(req, req["out_trade_no"], req["total_amount"], req["trade_no"], int(req["micros"]),
                                 req.get("trade_status", "TRADE_SUCCESS"), req.get("notify_app_id"))}


if __name__ == "__main__":
    command = sys.argv[1]
    request = json.load(sys.stdin)
    answer = {"keys": keys, "sign-request": sign_request, "notify": notify}[command](request)
    json.dump(answer, sys.stdout)
