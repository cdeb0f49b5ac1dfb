#!/usr/bin/env python3
"""The other half of Coffer's WeChat Pay API v3 tests, written with the PyPI package `wechatpayv3` (and `cryptography`),
so that Coffer's signing, verification and decryption are checked against an implementation nobody on this project wrote.

Usage: wechatpay_tool.py COMMAND < request.json > answer.json
  keys            new merchant and platform RSA-2048 key pairs (PEM)
  verify-request  does Coffer's Authorization header verify with the merchant's public key? (as WeChat Pay's server checks)
  notify          a payment notification as WeChat Pay sends it: resource encrypted with the APIv3 key (AEAD_AES_256_GCM),
                  body signed with the platform key; the tool decrypts its own resource with wechatpayv3 as a self-check
"""
import json
import re
import sys
from base64 import b64decode, b64encode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from interop_keys import key_pair
from wechatpayv3.utils import aes_decrypt, load_private_key, load_public_key, rsa_sign, rsa_verify


def keys(_):
    mp, mpub = key_pair()
    pp, ppub = key_pair()
    return {"merchant_private_pem": mp, "merchant_public_pem": mpub, "platform_private_pem": pp, "platform_public_pem": ppub}


def verify_request(req):
    header = req["authorization"]
    schema, _, params = header.partition(" ")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
    sign_str = "%s\n%s\n%s\n%s\n%s\n" % (req["method"], req["path"], fields.get("timestamp"), fields.get("nonce_str"),
                                        req["body"])
    public_key = load_public_key(req["merchant_public_pem"])
    try:
        public_key.verify(b64decode(fields.get("signature", "")), sign_str.encode("UTF-8"), PKCS1v15(), SHA256())
        valid = True
    except (InvalidSignature, ValueError):
        valid = False
    # WeChat Pay's own signer (deterministic PKCS#1 v1.5) must produce the same signature from the merchant's private key.
    expected = rsa_sign(load_private_key(req["merchant_private_pem"]), sign_str) if "merchant_private_pem" in req else None
    return {"schema": schema, "fields": fields, "valid": valid,
            "same_as_wechatpayv3": expected == fields.get("signature") if expected else None}


def notify(req):
    key = req["apiv3_key"]
    resource_nonce = req.get("resource_nonce", "coffer0nonce")
    associated = req.get("associated_data", "transaction")
    plain = json.dumps(req["transaction"], separators=(",", ":"))
    ciphertext = b64encode(AESGCM(key.encode()).encrypt(resource_nonce.encode(), plain.encode(), associated.encode())).decode()
    if aes_decrypt(resource_nonce, ciphertext, associated, key) != plain:
        raise SystemExit("self-check failed: wechatpayv3 cannot decrypt the resource")
    body = json.dumps({
        "id": req.get("id", "EV-2026-0001"), "create_time": "2026-11-23T10:00:00+08:00",
        "resource_type": "encrypt-resource", "event_type": req.get("event_type", "TRANSACTION.SUCCESS"),
        "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
                     "associated_data": associated, "nonce": resource_nonce},
    }, ensure_ascii=False, separators=(",", ":"))
    timestamp, nonce = str(req["timestamp"]), req.get("nonce", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")
    signature = rsa_sign(load_private_key(req["platform_private_pem"]), "%s\n%s\n%s\n" % (timestamp, nonce, body))
    if not rsa_verify(timestamp, nonce, body, signature, load_public_key(req["platform_public_pem"])):
        raise SystemExit("self-check failed: wechatpayv3 does not verify its own signature")
    headers = {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature,
               "Wechatpay-Serial": req["serial"], "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}
    return {"headers": headers, "body": body}


if __name__ == "__main__":
    command = sys.argv[1]
    request = json.load(sys.stdin) if command != "keys" else {}
    answer = {"keys": keys, "verify-request": verify_request, "notify": notify}[command](request)
    json.dump(answer, sys.stdout, ensure_ascii=False)
