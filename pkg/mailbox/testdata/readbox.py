#!/usr/bin/env python3
"""Read an mbox file or a Maildir with Python's mailbox module (a reader
that is not ours) and print one JSON object per message."""
import json
import mailbox
import sys

kind, path = sys.argv[1], sys.argv[2]
box = mailbox.mbox(path, create=False) if kind == "mbox" else mailbox.Maildir(path, create=False)
out = []
for msg in box:
    body = msg.get_payload(decode=False)
    out.append({
        "from_line": msg.get_from() if kind == "mbox" else "",
        "subject": msg["Subject"],
        "return_path": msg["Return-Path"],
        "delivered_to": msg["Delivered-To"],
        "body": body,
    })
print(json.dumps(out))
