#!/usr/bin/python3
"""Verify every DKIM-Signature of a message without DNS.

usage: dkimverify.py MESSAGE SELECTOR DOMAIN TXTFILE

The key record for SELECTOR._domainkey.DOMAIN is read from TXTFILE (the
test made the key); any other name is unknown. Prints one line per
signature and exits 0 only when there is at least one and all verify.
"""
import sys

import dkim

msg_path, selector, domain, txt_path = sys.argv[1:5]
message = open(msg_path, "rb").read()
record = open(txt_path, "rb").read().strip()
want = ("%s._domainkey.%s" % (selector, domain)).encode()


def dnsfunc(name, timeout=5):
    if name.rstrip(b".").lower() == want:
        return record
    return None


d = dkim.DKIM(message)
n = len([h for h in d.headers if h[0].lower() == b"dkim-signature"])
if n == 0:
    print("no DKIM-Signature")
    sys.exit(1)
ok = True
for i in range(n):
    good = d.verify(idx=i, dnsfunc=dnsfunc)
    print("signature %d: %s" % (i, "pass" if good else "FAIL"))
    ok = ok and good
sys.exit(0 if ok else 1)
