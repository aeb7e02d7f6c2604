#!/usr/bin/env python3
"""Send one message through smtp-bs with Python's smtplib.

usage: submit.py HOST PORT starttls|ssl CAFILE USER PASSWORD FROM TO [REQUIRETLS]

Exit 0 when the message was accepted; otherwise print the SMTP error as
"CODE TEXT" and exit 1.
"""
import smtplib
import ssl
import sys

host, port, mode, cafile, user, password, sender, rcpt = sys.argv[1:9]
mail_options = sys.argv[9:]
ctx = ssl.create_default_context(cafile=cafile)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
msg = ("From: %s\r\nTo: %s\r\nSubject: smtplib %s\r\n\r\nSent by smtplib over %s.\r\n"
       % (sender, rcpt, mode, mode))
try:
    if mode == "ssl":
        s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
    else:
        s = smtplib.SMTP(host, int(port), timeout=20)
        s.starttls(context=ctx)
    s.ehlo("smtplib.test")
    print("version", s.sock.version())
    if user:
        s.login(user, password)
    s.sendmail(sender, [rcpt], msg, mail_options=mail_options)
    s.quit()
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error.decode(errors="replace"))
    sys.exit(1)
except smtplib.SMTPRecipientsRefused as e:
    for code, text in e.recipients.values():
        print(code, text.decode(errors="replace"))
    sys.exit(1)
