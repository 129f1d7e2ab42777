#!/usr/bin/env python3
"""A webhook receiver for the tests, as an ATS would write one with the
standard library only: it checks jobmail's signature (the same function
the README shows), answers 500 to the first FAIL_FIRST requests, and
appends each accepted delivery to OUT as one JSON line.

    webhook_receiver.py PORT SECRET_FILE OUT FAIL_FIRST [CERT KEY]

With CERT and KEY (PEM files) it speaks HTTPS.
"""
import hashlib
import hmac
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify(secret: bytes, header: str, body: bytes, tolerance: int = 300) -> bool:
    """True if `Jobmail-Signature: t=...,v1=...` signs this body, and is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t = parts.get("t", "")
    expected = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = t.isdigit() and abs(time.time() - int(t)) <= tolerance
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


port, secret_file, out, fail_first = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
secret = open(secret_file, "rb").read().strip()
seen = {"requests": 0}


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        seen["requests"] += 1
        if not verify(secret, self.headers.get("Jobmail-Signature", ""), body):
            self.send_response(401)
            self.end_headers()
            with open(out + ".refused", "a") as f:
                f.write(body.decode("utf-8", "replace") + "\n")
            return
        if seen["requests"] <= fail_first:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"try again later")
            return
        event = json.loads(body)
        with open(out, "a") as f:
            f.write(json.dumps({
                "id": event["id"],
                "header_id": self.headers.get("Jobmail-Event-Id"),
                "type": event["type"],
                "attempt": int(self.headers.get("Jobmail-Attempt", "0")),
                "path": self.path,
                "event": event,
            }) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(port)), Hook)
if len(sys.argv) > 6:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[5], sys.argv[6])
    server.socket = tls.wrap_socket(server.socket, server_side=True)
server.serve_forever()
