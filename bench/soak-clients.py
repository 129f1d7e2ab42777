"""The soak's clients: SESSIONS concurrent SMTP sessions for DURATION
seconds against jobmail, each picking a kind of traffic per session:
valid mails (some pipelined, several per session), bad MIME, garbage,
pipelined injection (bare-LF dots smuggling a second mail), oversized
(11 MB) and slow (a byte a second). Writes what the server answered to
WORKDIR/clients.json and samples the daemon's RSS every 5 s into
WORKDIR/rss.json. SOAK_ROUNDS (default 1) rounds of traffic, each followed
by SOAK_IDLE (default 30) seconds idle.

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


async def reply_line(reader):
    """Reads one (possibly multi-line) reply; returns its code and last line."""
    while True:
        line = await asyncio.wait_for(reader.readline(), 400)
        if not line:
            raise ConnectionError("closed")
        if len(line) < 4 or line[3:4] != b"-":
            return line[:3].decode("latin-1"), line.decode("latin-1").rstrip("\r\n")


async def reply(reader):
    """Reads one (possibly multi-line) reply; returns its code."""
    return (await reply_line(reader))[0]


async def trickle(reader, writer, data, delay=1.0):
    """Writes `data` a byte every `delay` seconds while reading: returns the
    reply (code, line) the server sent, whether it came after the last byte
    or in the middle (the server may give up on a slow client: its 421 is
    read, never lost to the reset that writing on would cause)."""
    answer = asyncio.ensure_future(reply_line(reader))
    try:
        for b in data:
            if answer.done():
                break
            writer.write(bytes([b]))
            try:
                await writer.drain()
            except (ConnectionResetError, BrokenPipeError):
                break
            await asyncio.wait([answer], timeout=delay)
        return await answer
    finally:
        answer.cancel()


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
        if kind in ("slow", "slow-commands"):
            # A byte a second, each command waiting for its reply. "slow"
            # sends its body so too: below min_data_rate (500 B/s after a
            # 30 s grace) the server closes with 421 4.4.2 by design, and
            # that reply is the expected outcome. "slow-commands" sends its
            # body at once after the 354 and expects 250.
            mid = next_id("slow")
            for command in ["EHLO slow", "MAIL FROM:<s@example.org>", f"RCPT TO:<{RCPT}>", "DATA"]:
                code, line = await trickle(reader, writer, f"{command}\r\n".encode())
                if code != ("354" if command == "DATA" else "250"):
                    count(kind, f"{code} at {command.split()[0]}")
                    return
            body = f"Message-ID: {mid}\r\n\r\nslow\r\n.\r\n".encode()
            if kind == "slow":
                code, line = await trickle(reader, writer, body)
                if code == "421" and "data rate too low" in line:
                    code = "421 rate"
            else:
                writer.write(body)
                await writer.drain()
                code, line = await reply_line(reader)
            count(kind, code)
            (log["accepted"] if code == "250" else log["refused"]).append(mid)
            if code != "250":
                return
            writer.write(b"QUIT\r\n")
            await writer.drain()
            await reply(reader)
            return
        writer.write(b"EHLO soak.client\r\n")
        await writer.drain()
        await reply(reader)
        if kind == "valid":
            for _ in range(rng.randint(1, 4)):
                mid = next_id("valid")
                await dialog(reader, writer, mid, mail(mid, rng.choice([200, 2000, 30000, 300000])), kind)
        elif kind == "pipelined":
            # RFC 2920: MAIL, RCPT and DATA in one group, the body after the
            # 354; the body, its dot and the next MAIL, RCPT, DATA (or QUIT)
            # in the next group.
            mids = [next_id("pipe") for _ in range(3)]
            envelope = f"MAIL FROM:<p@example.org>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode()
            writer.write(envelope)
            await writer.drain()
            for i, m in enumerate(mids):
                codes = [await reply(reader) for _ in range(3)]
                if codes != ["250", "250", "354"]:
                    count(kind, "/".join(codes))
                    return
                last = i == len(mids) - 1
                writer.write(mail(m, 500) + (b"QUIT\r\n" if last else envelope))
                await writer.drain()
                code = await reply(reader)
                count(kind, code)
                (log["accepted"] if code == "250" else log["refused"]).append(m)
            await reply(reader)
            return
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


KINDS = ["valid"] * 50 + ["pipelined"] * 8 + ["bad-mime"] * 12 + ["garbage"] * 10 + ["injection"] * 10 + ["oversized"] * 3 + ["slow"] * 2 + ["slow-commands"] * 2


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


async def sampler(deadline, samples, start):
    while time.monotonic() < deadline:
        samples.append([round(time.monotonic() - start), rss_kb()])
        await asyncio.sleep(5)


async def main():
    # Baseline: a few mails in, then idle.
    for _ in range(10):
        await one_session("valid")
    await asyncio.sleep(5)
    baseline = rss_kb()
    start = time.monotonic()
    samples, rounds = [], []
    # SOAK_ROUNDS rounds of traffic, each followed by SOAK_IDLE seconds
    # idle: RSS that grows round after round is a leak, RSS that comes back
    # to the same plateau is memory kept for reuse.
    for _ in range(int(os.environ.get("SOAK_ROUNDS", "1"))):
        deadline = time.monotonic() + DURATION
        idle_until = deadline + int(os.environ.get("SOAK_IDLE", "30"))
        await asyncio.gather(sampler(idle_until, samples, start), *(worker(deadline) for _ in range(SESSIONS)))
        await asyncio.sleep(max(0, idle_until - time.monotonic()))
        rounds.append({"peak": max(kb for _, kb in samples), "after_idle": rss_kb()})
    log["elapsed_s"] = round(time.monotonic() - start, 1)
    log["rss_kb"] = {"baseline": baseline, "peak": max(kb for _, kb in samples), "rounds": rounds, "samples": samples}
    with open(os.path.join(W, "clients.json"), "w") as f:
        json.dump(log, f)
    with open(os.path.join(W, "rss.json"), "w") as f:
        json.dump(log["rss_kb"], f)


asyncio.run(main())
