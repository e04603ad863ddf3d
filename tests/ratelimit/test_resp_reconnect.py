"""The pipelined connection across a reconnect: a reply only ever answers a request that was
sent on the connection it came from."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from ratelimit.storage.resp import PipelinedConnection

from ..redis_servers import RedisProcess, plain

pytestmark = pytest.mark.redis
SCRIPT = "return 'answer'"
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()


@pytest.mark.parametrize("db", [0, 3])  # db 3: the set-up also sends SELECT
async def test_a_request_on_a_lost_connection_never_gets_the_next_ones_replies(
    redis_server: RedisProcess, db: int
):
    """When the loop has seen the connection close but not yet run its connection_lost, a new
    request opens the next connection. On Python 3.12+ `wait_for` runs that opening at once
    (called directly here, so that 3.11 shows it too): before the fix the next connection's
    set-up replies (OK, the script's SHA) answered the requests left on the old one, and the
    set-up itself then waited for replies that had gone elsewhere."""
    url = plain(redis_server.url).rsplit("/", 1)[0] + f"/{db}"
    connection = PipelinedConnection(url, SCRIPT, SHA, timeout=2.0, connect_timeout=2.0)
    command = connection.evalsha_command((), ())
    try:
        assert await connection.evalsha(command) == b"answer"
        stranded = asyncio.ensure_future(connection.evalsha(command))
        await asyncio.sleep(0)  # it waits on the old connection now
        old = connection._transport
        assert old is not None
        old.close()  # as on the server's EOF: closing, its connection_lost still to come
        await connection._open(asyncio.get_running_loop())
        with pytest.raises(RedisConnectionError, match="connection to Redis lost"):
            await asyncio.wait_for(stranded, 5)
        assert await asyncio.wait_for(connection.evalsha(command), 5) == b"answer"
    finally:
        await connection.close()
