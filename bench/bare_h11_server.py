"""The ceiling of h11 on trio: the simplest correct keep-alive loop.

``python bench/bare_h11_server.py PORT`` answers every request with the same
1 KiB ``text/plain`` body as the other benchmark servers, with the same kind of
``Date``/``Server`` headers. One task per connection (``trio.serve_tcp``), no
timeouts, no routing, no limits: whatever trio_ws does on top of this costs.
"""

import sys
import time
from email.utils import formatdate
from functools import partial

import h11
import trio

BODY = b"x" * 1024
_date = [0, b""]


def date() -> bytes:
    now = int(time.time())
    if now != _date[0]:
        _date[:] = [now, formatdate(now, usegmt=True).encode()]
    return _date[1]  # type: ignore[return-value]


async def handle(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif type(event) is h11.EndOfMessage:  # request complete (body, if any, ignored)
                headers = [
                    (b"date", date()),
                    (b"server", b"bare-h11"),
                    (b"content-type", b"text/plain"),
                    (b"content-length", b"%d" % len(BODY)),
                ]
                data = conn.send(h11.Response(status_code=200, headers=headers, reason=b"OK"))
                data += conn.send(h11.Data(data=BODY)) + conn.send(h11.EndOfMessage())
                await stream.send_all(data)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
            elif type(event) is h11.ConnectionClosed or event is h11.PAUSED:
                return
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
        return
    finally:
        await trio.aclose_forcefully(stream)


if __name__ == "__main__":
    trio.run(partial(trio.serve_tcp, handle, int(sys.argv[1]), host="127.0.0.1"))
