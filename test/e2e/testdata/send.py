#!/usr/bin/env python3
"""Send messages with Python's smtplib, as a client that is not ours.

Usage: send.py HOST PORT SPEC.json
SPEC is a list of {"from": ..., "to": [...], "file": path, "utf8": bool};
one session sends them all. Prints one JSON line per message:
{"ok": true, "reply": "..."} or {"ok": false, "error": "..."}.
"""
import json
import smtplib
import sys


def main():
    host, port, spec = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(spec) as f:
        msgs = json.load(f)
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=30) as s:
        s.ehlo()
        for m in msgs:
            with open(m["file"], "rb") as f:
                data = f.read()
            opts = ["SMTPUTF8"] if m.get("utf8") else []
            try:
                s.mail(m["from"], opts)
                for r in m["to"]:
                    code, resp = s.rcpt(r)
                    if code != 250:
                        raise smtplib.SMTPRecipientsRefused({r: (code, resp)})
                code, resp = s.data(data)
                print(json.dumps({"ok": code == 250, "reply": "%d %s" % (code, resp.decode())}))
            except Exception as e:  # report and go on with the next message
                print(json.dumps({"ok": False, "error": repr(e)}))
                s.rset()


if __name__ == "__main__":
    main()
