"""The soak's clients: SESSIONS concurrent SMTP sessions for DURATION
seconds against jobmail, each picking a kind of traffic per session:
valid mails (some pipelined, several per session), bad MIME, garbage,
pipelined injection (bare-LF dots smuggling a second mail), oversized
(11 MB) and slow (a byte a second). Writes what the server answered to
WORKDIR/clients.json and samples the daemon's RSS into WORKDIR/rss.json.

    python3 bench/soak-clients.py PORT PID DURATION SESSIONS WORKDIR
"""

import asyncio
import json
import os
import random
import sys
import time

PORT, PID, DURATION, SESSIONS, W = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
RCPT = "jobs@soak.example"
rng = random.Random(7)
log = {"accepted": [], "refused": [], "smuggled": [], "kinds": {}, "errors": {}, "replies": {}}
counter = 0


def rss_kb():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def next_id(tag):
    global counter
    counter += 1
    return f"<soak-{tag}-{counter}@soak.example>"


def stuff(body: bytes) -> bytes:
    lines = body.split(b"\r\n")
    return b"\r\n".join((b"." + l) if l.startswith(b".") else l for l in lines)


def mail(mid, size, extra=b""):
    filler = (b"x" * 70 + b"\r\n") * max(1, size // 72)
    body = (f"From: Kim Soak <kim{counter}@example.org>\r\nTo: {RCPT}\r\nSubject: Bewerbung {mid}\r\n"
            f"Message-ID: {mid}\r\n\r\n").encode() + extra + b"..dot line\r\n" + filler
    return stuff(body) + b"\r\n.\r\n"


BAD_MIME = [
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"unterminated\"\r\n\r\n--unterminated\r\nContent-Type: application/pdf; name=\"../../etc/passwd\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64===\r\n",
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * 200,
    b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nFrom: \xff\xfe\r\n",
    b"Content-Type: application/ms-tnef; name=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\neJ8+IgAAAQaQCAAEAAAAAAABAAEAAQeQBgAIAAAA5AQAAAAAAADoAAEIgAcAGAAAAElQTS5NaWNyb3NvZnQgTWFpbC5Ob3Rl\r\n",
    b"Content-Disposition: attachment; filename*=utf-8''%E2%80%AEfdp.exe\r\nContent-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E2=80=AE=ZZ=\r\n",
]


async def reply(reader):
    """Reads one (possibly multi-line) reply; returns its code."""
    while True:
        line = await asyncio.wait_for(reader.readline(), 400)
        if not line:
            raise ConnectionError("closed")
        if len(line) >= 4 and line[3:4] == b" ":
            return line[:3].decode("latin-1")
        if len(line) < 4 or line[3:4] != b"-":
            return line[:3].decode("latin-1")


def count(kind, code):
    log["replies"].setdefault(kind, {}).setdefault(code, 0)
    log["replies"][kind][code] += 1


async def dialog(reader, writer, mid, data, kind):
    writer.write(f"MAIL FROM:<kim@example.org>\r\n".encode())
    await writer.drain()
    if await reply(reader) != "250":
        return
    writer.write(f"RCPT TO:<{RCPT}>\r\n".encode())
    await writer.drain()
    if await reply(reader) != "250":
        return
    writer.write(b"DATA\r\n")
    await writer.drain()
    if await reply(reader) != "354":
        return
    writer.write(data)
    await writer.drain()
    code = await reply(reader)
    count(kind, code)
    (log["accepted"] if code == "250" else log["refused"]).append(mid)
    return code


async def one_session(kind):
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    try:
        await reply(reader)
        if kind == "slow":
            mid = next_id("slow")
            text = f"EHLO slow\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\nMessage-ID: {mid}\r\n\r\nslow\r\n.\r\nQUIT\r\n".encode()
            for b in text:
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.sleep(1)
            codes = []
            try:
                while True:
                    codes.append(await reply(reader))
            except (ConnectionError, asyncio.TimeoutError):
                pass
            # EHLO, MAIL, RCPT, DATA, end of data, QUIT
            if len(codes) >= 5:
                count(kind, codes[4])
                (log["accepted"] if codes[4] == "250" else log["refused"]).append(mid)
            return
        writer.write(b"EHLO soak.client\r\n")
        await writer.drain()
        await reply(reader)
        if kind == "valid":
            for _ in range(rng.randint(1, 4)):
                mid = next_id("valid")
                await dialog(reader, writer, mid, mail(mid, rng.choice([200, 2000, 30000, 300000])), kind)
        elif kind == "pipelined":
            mids = [next_id("pipe") for _ in range(3)]
            blob = b"".join(f"MAIL FROM:<p@example.org>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode() + mail(m, 500) for m in mids)
            writer.write(blob)
            await writer.drain()
            for m in mids:
                codes = [await reply(reader) for _ in range(4)]
                count(kind, codes[3])
                (log["accepted"] if codes[3] == "250" else log["refused"]).append(m)
        elif kind == "bad-mime":
            mid = next_id("mime")
            await dialog(reader, writer, mid, mail(mid, 100, rng.choice(BAD_MIME)), kind)
        elif kind == "oversized":
            mid = next_id("big")
            await dialog(reader, writer, mid, mail(mid, 11 * 1024 * 1024), kind)
        elif kind == "injection":
            outer, inner = next_id("outer"), next_id("smuggled")
            log["smuggled"].append(inner)
            sep = rng.choice([b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"])
            body = (f"Message-ID: {outer}\r\nSubject: outer\r\n\r\nhello".encode() + sep +
                    f"MAIL FROM:<evil@example.org>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\nMessage-ID: {inner}\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n".encode())
            await dialog(reader, writer, outer, body, kind)
        elif kind == "garbage":
            junk = bytes(rng.choice(b"\r\n.\x00\xffAZaz :<>@") for _ in range(rng.randint(10, 4000)))
            writer.write(junk + b"\r\nQUIT\r\n")
            await writer.drain()
            try:
                while await reply(reader):
                    pass
            except (ConnectionError, asyncio.TimeoutError):
                pass
            return
        writer.write(b"QUIT\r\n")
        await writer.drain()
        await reply(reader)
    finally:
        writer.close()


KINDS = ["valid"] * 50 + ["pipelined"] * 8 + ["bad-mime"] * 12 + ["garbage"] * 10 + ["injection"] * 10 + ["oversized"] * 3 + ["slow"] * 4


async def worker(deadline):
    while time.monotonic() < deadline:
        kind = rng.choice(KINDS)
        log["kinds"][kind] = log["kinds"].get(kind, 0) + 1
        try:
            await one_session(kind)
        except (ConnectionError, asyncio.TimeoutError, OSError) as e:
            key = f"{kind}: {type(e).__name__}"
            log["errors"][key] = log["errors"].get(key, 0) + 1
            await asyncio.sleep(0.2)


async def sampler(deadline, samples):
    while time.monotonic() < deadline:
        samples.append(rss_kb())
        await asyncio.sleep(5)


async def main():
    # Baseline: a few mails in, then idle.
    for _ in range(10):
        await one_session("valid")
    await asyncio.sleep(5)
    baseline = rss_kb()
    start = time.monotonic()
    deadline = start + DURATION
    samples = []
    await asyncio.gather(sampler(deadline + 30, samples), *(worker(deadline) for _ in range(SESSIONS)))
    log["elapsed_s"] = round(time.monotonic() - start, 1)
    log["rss_kb"] = {"baseline": baseline, "peak": max(samples), "samples": samples}
    with open(os.path.join(W, "clients.json"), "w") as f:
        json.dump(log, f)


asyncio.run(main())
