#!/usr/bin/env python3
"""Greps the logs of the servers a test run started (COFFER_LOG_DIR: each server's output, kept by scripts/demo-server.sh)
for secrets. The start banner prints the demo credentials on purpose; every other line must be a JSON log object
(`--log-format json`) and must not contain an API key, a console session token, a banner password or key, a card or bank
account number (13–25 digits standing alone: not inside an id such as msg_0a1234…), or a password field. Usage: check-logs.py DIR"""
import json, os, re, sys

directory = sys.argv[1]
secret_patterns = [re.compile(p) for p in [r"\bcpk_[0-9a-f]{16,}", r"\bcak_[0-9a-f]{16,}", r"\bcs_[A-Za-z0-9]{16,}",
                                           r"(?<![0-9A-Za-z_])[0-9]{13,25}(?![0-9A-Za-z_])", r'"password"\s*:']]
banner = re.compile(r"^(Coffer is running|console:|database:|e-mail:|sandbox |demo |platform key:|payment channel:|channels?:|metrics:|libqrencode|QR codes|warning:)")
failures, lines_checked, files = [], 0, 0
for name in sorted(os.listdir(directory)):
    path = os.path.join(directory, name)
    files += 1
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    known = set(re.findall(r"(?:platform key|demo owner key): (\S+)", text))
    known |= set(re.findall(r"login \(.*?\): \S+ / (\S+)", text))
    # Lines end with \n only: a JSON string may hold U+2028 and the like, which str.splitlines would split on.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip() or banner.match(line):
            continue
        lines_checked += 1
        try:
            entry = json.loads(line)
        except ValueError:
            failures.append("%s:%d is not a JSON log line: %s" % (name, number, line[:160]))
            continue
        # A request's path is the caller's own text (schemathesis sends long digit runs there) and a request id is random
        # hex: keys are looked for in them, numbers are not.
        without_path = json.dumps({k: v for k, v in entry.items() if k not in ("path", "request_id", "time")}, ensure_ascii=False)
        for secret in known:
            if secret in line:
                failures.append("%s:%d contains a banner secret" % (name, number))
        for p in secret_patterns:
            if p.search(line if not p.pattern.startswith("(?<![0-9") else without_path):
                failures.append("%s:%d matches %s: %s" % (name, number, p.pattern, line[:160]))
for f in failures[:50]:
    print("logs: " + f)
print("logs: %d files, %d log lines, %d problems" % (files, lines_checked, len(failures)))
sys.exit(1 if failures or files == 0 else 0)
