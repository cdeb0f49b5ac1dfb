#!/usr/bin/env python3
"""Real e-mail (operations issue, item 4): a local SMTP server on loopback (aiosmtpd) that requires STARTTLS with a
certificate from a throwaway CA and AUTH PLAIN; `coffer serve --smtp-url …` delivers the notice outbox through it. Two
accounts, one Chinese and one English, each get a recharge credited; the test checks that each notice arrives once,
over TLS, authenticated, in the account's language, and that the relay's password is in no log line.

Usage: smtp-test.py BIN    (run with the test command's virtual environment: aiosmtpd, cryptography)"""
import datetime, email, email.policy, http.client, json, os, re, signal, socket, ssl, subprocess, sys, tempfile, time
import warnings
warnings.filterwarnings("ignore", message="Session.login_data")  # aiosmtpd's own deprecation, raised by its AUTH code
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

bin_path = sys.argv[1]
work = tempfile.mkdtemp(prefix="coffer-smtp-")
failures = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A CA of this run only, and the relay's certificate for localhost signed by it.
def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


now = datetime.datetime.now(datetime.timezone.utc)
ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (x509.CertificateBuilder().subject_name(name("Coffer test CA")).issuer_name(name("Coffer test CA"))
      .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                   key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                                   decipher_only=False), critical=True)
      .sign(ca_key, hashes.SHA256()))
server_key = ec.generate_private_key(ec.SECP256R1())
server_cert = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
               .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
               .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .sign(ca_key, hashes.SHA256()))
ca_file, cert_file, key_file = (os.path.join(work, n) for n in ("ca.pem", "server.pem", "server.key"))
open(ca_file, "wb").write(ca.public_bytes(serialization.Encoding.PEM))
open(cert_file, "wb").write(server_cert.public_bytes(serialization.Encoding.PEM))
open(key_file, "wb").write(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(cert_file, key_file)

smtp_user, smtp_password = "coffer", "relay-" + os.urandom(8).hex()
received = []


class Handler:
    async def handle_DATA(self, server, session, envelope):
        received.append({"to": envelope.rcpt_tos, "from": envelope.mail_from, "tls": session.ssl is not None,
                         "auth": session.authenticated, "message": email.message_from_bytes(envelope.content, policy=email.policy.default)})
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = mechanism == "PLAIN" and auth_data.login == smtp_user.encode() and auth_data.password == smtp_password.encode()
    return AuthResult(success=ok)


smtp_port = free_port()
controller = Controller(Handler(), hostname="127.0.0.1", port=smtp_port, server_hostname="localhost", tls_context=tls,
                        require_starttls=True, auth_required=True, auth_require_tls=True, authenticator=authenticator)
controller.start()

data_dir = os.path.join(work, "data")
key_out = subprocess.run([bin_path, "platform-key", "--name", "smtp-test", "--data-dir", data_dir], capture_output=True, text=True)
key = re.search(r"platform key: (\S+)", key_out.stdout + key_out.stderr).group(1)
port = free_port()
log_dir = os.environ.get("COFFER_LOG_DIR") or work
log_path = os.path.join(log_dir, "smtp-test.log")
log = open(log_path, "w")
server = subprocess.Popen([bin_path, "serve", "--sandbox", "--data-dir", data_dir, "--port", str(port), "--no-console",
                           "--log-format", "json", "--job-interval-seconds", "1",
                           "--smtp-url", f"smtp://{smtp_user}:{smtp_password}@localhost:{smtp_port}",
                           "--smtp-from", "billing@coffer.example", "--smtp-ca-file", ca_file], stdout=log, stderr=log)
deadline = time.time() + 60
while "Coffer is running" not in open(log_path).read():
    if server.poll() is not None or time.time() > deadline:
        sys.exit("server did not start:\n" + open(log_path).read())
    time.sleep(0.1)
banner = open(log_path).read()
if "e-mail: notices through SMTP relay localhost:%d (STARTTLS)" % smtp_port not in banner:
    failures.append("the start banner does not name the SMTP relay: " + banner)


def call(method, path, body=None, idem=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    if idem:
        headers["Idempotency-Key"] = idem
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"{}")


accounts = {}
for lang in ("zh", "en"):
    address = f"{lang}-{os.urandom(4).hex()}@customer.example"
    body = {"type": "personal", "entityName": f"SMTP {lang}", "contactEmail": address,
            "owner": {"email": address, "name": "owner", "password": "correct horse battery"}}
    if lang == "en":
        body["language"] = "en"
    status, created = call("POST", "/v1/accounts", body, "smtp-account-" + address)
    assert status == 201 and created["account"]["language"] == lang, (status, created)
    account = created["account"]["id"]
    status, recharge = call("POST", f"/v1/accounts/{account}/recharges", {"amount": "1234.50", "channel": "sandbox"}, "smtp-rch-" + account)
    assert status == 201, (status, recharge)
    status, paid = call("POST", f"/v1/sandbox/recharges/{recharge['id']}/pay")
    assert status == 200 and paid["state"] == "paid", (status, paid)
    accounts[lang] = (account, address, recharge["id"])

deadline = time.time() + 30
while time.time() < deadline and len({a for m in received for a in m["to"]}) < 2:
    time.sleep(0.2)
time.sleep(3)  # a few more job runs: a notice sent twice would arrive now
server.send_signal(signal.SIGTERM)
server.wait(timeout=30)
controller.stop()

expected = {"zh": ("充值到账", "充值 ¥1,234.50 已到账"), "en": ("Recharge credited", "Your recharge of ¥1,234.50 has been credited")}
for lang, (account, address, recharge_id) in accounts.items():
    mine = [m for m in received if m["to"] == [address]]
    ids = [m["message"]["Message-ID"] for m in mine]
    if len(ids) != len(set(ids)):
        failures.append(f"{lang}: a notice arrived twice: {ids}")
    credited = [m for m in mine if recharge_id in m["message"].get_content()]
    if len(credited) != 1:
        failures.append(f"{lang}: {len(credited)} recharge notices arrived, expected one (of {len(mine)} messages)")
        continue
    m = credited[0]
    subject, text = m["message"]["Subject"], m["message"].get_content()
    if subject != expected[lang][0] or expected[lang][1] not in text:
        failures.append(f"{lang}: not in the account's language: {subject!r} / {text[:120]!r}")
    if not (m["tls"] and m["auth"]):
        failures.append(f"{lang}: delivered without STARTTLS or without authentication")
    if m["from"] != "billing@coffer.example" or m["message"]["Content-Language"] != ("zh-CN" if lang == "zh" else "en"):
        failures.append(f"{lang}: envelope from {m['from']!r}, Content-Language {m['message']['Content-Language']!r}")
if smtp_password in open(log_path).read():
    failures.append("the SMTP password is in the server's log")

import shutil
shutil.rmtree(work, ignore_errors=True)
print(f"smtp test: {len(received)} messages through a STARTTLS relay with AUTH PLAIN (private CA); "
      "each notice arrived once, in its account's language (zh, en)")
for f in failures:
    print("FAIL", f)
print(f"smtp: {0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
