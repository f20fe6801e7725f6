"""Raw SMTP capture server: records every byte of every session (for golden tests)."""

import asyncio
import itertools
import sys

OUT = sys.argv[1]
PORT = int(sys.argv[2])
n = itertools.count(1)


async def handle(r, w):
    i = next(n)
    log = open(f"{OUT}/smtp-{i}.raw", "wb")  # noqa: SIM115 - closed at session end

    def rec(tag, b):
        log.write(tag + b)
        log.flush()

    out = b"220 cap.example ESMTP test\r\n"
    rec(b"S: ", out)
    w.write(out)
    while True:
        line = await r.readline()
        if not line:
            break
        rec(b"C: ", line)
        cmd = line[:4].upper()
        if cmd == b"DATA":
            out = b"354 go\r\n"
            rec(b"S: ", out)
            w.write(out)
            data = await r.readuntil(b"\r\n.\r\n")
            rec(b"D: ", data)
            out = b"250 ok\r\n"
        elif cmd == b"QUIT":
            out = b"221 bye\r\n"
            rec(b"S: ", out)
            w.write(out)
            await w.drain()
            break
        else:
            out = b"250 ok\r\n"
        rec(b"S: ", out)
        w.write(out)
        await w.drain()
    log.close()
    w.close()


async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", PORT)
    async with s:
        await s.serve_forever()


asyncio.run(main())
