"""What the kernel says about a listening socket's accepted connections."""

from __future__ import annotations

import asyncio
import socket


async def nodelay_of_accepted(sock: socket.socket) -> int:
    """TCP_NODELAY of a connection that asyncio accepted on ``sock`` (non-zero: set)."""
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = writer.get_extra_info("socket")
        seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accept, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection(*sock.getsockname())
        result = await asyncio.wait_for(seen, 5)
        writer.close()
    return result
