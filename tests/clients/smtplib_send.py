#!/usr/bin/env python3
"""Send a .eml file to jobmail with Python's smtplib, as a real client would.

usage: smtplib_send.py HOST PORT FROM TO FILE
Prints JSON: the server's reply to the mail and, for each attachment Python's
email package finds, its file name and the SHA-256 of its decoded bytes.
FROM may be '' for the null sender.
"""
import email
import email.policy
import hashlib
import json
import smtplib
import sys

host, port, sender, rcpt, path = sys.argv[1:6]
raw = open(path, "rb").read()
attachments = []
msg = email.message_from_bytes(raw, policy=email.policy.default)
for part in msg.iter_attachments():
    payload = part.get_payload(decode=True)
    if payload is not None:
        attachments.append({"filename": part.get_filename(),
                            "sha256": hashlib.sha256(payload).hexdigest()})
with smtplib.SMTP(host, int(port), timeout=30) as s:
    s.ehlo("python.test.example")
    code, text = s.mail(sender)
    assert code == 250, (code, text)
    code, text = s.rcpt(rcpt)
    assert code == 250, (code, text)
    code, text = s.data(raw)
print(json.dumps({"code": code, "text": text.decode(), "attachments": attachments}))
