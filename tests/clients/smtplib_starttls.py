#!/usr/bin/env python3
"""Send one mail to jobmail over STARTTLS with Python's smtplib, trusting a CA.

usage: smtplib_starttls.py HOST PORT CAFILE FROM TO FILE [MAX_TLS_VERSION]
MAX_TLS_VERSION: "1.2" to stop at TLS 1.2 (default: whatever both sides have).
Prints JSON: whether STARTTLS was offered before and after, the TLS version
and cipher OpenSSL negotiated, how long the STARTTLS exchange and handshake
took (ms), and the server's reply to the mail.
"""
import json
import smtplib
import ssl
import sys
import time

host, port, cafile, sender, rcpt, path = sys.argv[1:7]
maximum = sys.argv[7] if len(sys.argv) > 7 else None
raw = open(path, "rb").read()
context = ssl.create_default_context(cafile=cafile)
if maximum == "1.2":
    context.maximum_version = ssl.TLSVersion.TLSv1_2
with smtplib.SMTP(host, int(port), timeout=30) as s:
    s.ehlo("python.test.example")
    offered = s.has_extn("starttls")
    started = time.perf_counter()
    code, text = s.starttls(context=context)
    handshake_ms = (time.perf_counter() - started) * 1000
    assert code == 220, (code, text)
    s.ehlo("python.test.example")
    offered_inside = s.has_extn("starttls")
    version = s.sock.version()
    cipher = s.sock.cipher()[0]
    code, text = s.mail(sender)
    assert code == 250, (code, text)
    code, text = s.rcpt(rcpt)
    assert code == 250, (code, text)
    code, text = s.data(raw)
print(json.dumps({"offered": offered, "offered_inside": offered_inside,
                  "version": version, "cipher": cipher,
                  "handshake_ms": round(handshake_ms, 2),
                  "code": code, "text": text.decode()}))
