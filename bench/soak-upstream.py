"""The soak's flaky upstream on 127.0.0.1: an SMTP server that refuses
connections for 10 s each minute, greets some sessions with 421, drops
some at once or in the middle of DATA, answers 451 to some RCPTs and some
ends of data, and accepts the rest. Counts accepted mails in a file.

    python3 bench/soak-upstream.py PORT COUNT_FILE
"""

import asyncio
import random
import sys
import time

PORT, COUNT = int(sys.argv[1]), sys.argv[2]
accepted = 0
rng = random.Random(19)


async def session(reader, writer):
    global accepted
    try:
        r = rng.random()
        if r < 0.10:
            writer.close()
            return
        if r < 0.18:
            writer.write(b"421 4.3.2 busy, try later\r\n")
            await writer.drain()
            writer.close()
            return
        writer.write(b"220 flaky.test ESMTP\r\n")
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), 60)
            if not line:
                break
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-flaky.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n")
            elif verb == b"MAIL":
                writer.write(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                writer.write(b"451 4.3.0 try again\r\n" if rng.random() < 0.08 else b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                drop = rng.random() < 0.08
                while True:
                    l = await asyncio.wait_for(reader.readline(), 60)
                    if not l:
                        return
                    if drop:
                        writer.close()
                        return
                    if l == b".\r\n":
                        break
                if rng.random() < 0.10:
                    writer.write(b"451 4.3.0 temporary failure\r\n")
                else:
                    accepted += 1
                    with open(COUNT, "w") as f:
                        f.write(str(accepted))
                    writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            elif verb == b"RSET" or verb == b"NOOP":
                writer.write(b"250 ok\r\n")
            else:
                writer.write(b"502 5.5.2 not here\r\n")
            await writer.drain()
    except (asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    while True:
        server = await asyncio.start_server(session, "127.0.0.1", PORT, reuse_address=True)
        await asyncio.sleep(50)
        server.close()  # connections refused for 10 s
        await asyncio.sleep(10)


asyncio.run(main())
