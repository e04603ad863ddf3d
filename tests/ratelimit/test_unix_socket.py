"""A Redis reached over a unix socket: both spellings of the URL decide, through the fast path."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from ratelimit import Identity, Limiter
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

from ..redis_servers import RedisProcess

pytestmark = pytest.mark.redis
SMALL = Path(__file__).parent / "policies" / "small.toml"


@pytest.mark.parametrize("scheme", ["unix", "redis+unix"])
async def test_a_unix_socket_url_decides(scheme: str, tmp_path: Path):
    socket = tmp_path / "redis.sock"
    server = RedisProcess(None, "--unixsocket", str(socket), "--unixsocketperm", "700").start()
    try:
        storage = RedisStorage(f"{scheme}://{socket}?db=3&timeout=1")
        assert storage.command_sha is not None  # the pipelined connection, not redis-py
        limiter = Limiter(load_policy(SMALL), storage)
        who = Identity("acme", "main", "free")
        try:
            decisions = [await limiter.check(who, "call") for _ in range(5)]
        finally:
            await limiter.close()
        assert [d.allowed for d in decisions] == [True] * 4 + [False]  # small.toml: 4 a day
        counted = redis.Redis(port=server.port, db=3)
        try:
            assert counted.dbsize() > 0  # the URL's db, over the socket
        finally:
            counted.close()
    finally:
        server.remove()
