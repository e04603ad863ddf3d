"""A real local Redis Cluster of three masters, and a Sentinel watching a master, for the tests."""

from __future__ import annotations

import shutil
import subprocess
import time

import redis

from .redis_servers import RedisProcess, free_port, redis_binary

MASTERS = 3


def redis_cli() -> str:
    found = shutil.which("redis-cli") or redis_binary().replace("redis-server", "redis-cli")
    return found


class LocalCluster:
    """MASTERS cluster-enabled redis-servers on free ports, each in its own temp dir."""

    def __init__(self) -> None:
        self.nodes = [RedisProcess(None, *self._options()) for _ in range(MASTERS)]

    @staticmethod
    def _options() -> list[str]:
        # the bus port is explicit: port + 10000 may be taken or out of range
        return [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(free_port()),
            "--cluster-node-timeout", "5000",
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> LocalCluster:
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            create = [redis_cli(), "--cluster", "create", *addresses, "--cluster-replicas", "0"]
            subprocess.run(
                [*create, "--cluster-yes"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )
            self.wait_ok()
        except BaseException:
            self.remove()
            raise
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node reports cluster_state:ok and knows all the masters."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._ok(node) for node in self.nodes):
                return
            time.sleep(0.05)
        raise RuntimeError("the local Redis Cluster did not reach cluster_state:ok")

    def _ok(self, node: RedisProcess) -> bool:
        info = node.command("CLUSTER", "INFO")
        return "cluster_state:ok" in info and f"cluster_known_nodes:{MASTERS}" in info

    def flush(self) -> None:
        for node in self.nodes:
            client = redis.Redis(port=node.port)
            try:
                client.flushall()
                client.config_resetstat()
            finally:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def remove(self) -> None:
        for node in self.nodes:
            node.remove()


class LocalSentinel:
    """A redis-server in sentinel mode watching `master` under the service name `service`."""

    def __init__(self, master: RedisProcess, service: str = "fairuse") -> None:
        self.master = master
        self.service = service
        self.server = RedisProcess(None)
        config = self.server.dir / "sentinel.conf"
        config.write_text(
            f"port {self.server.port}\nbind 127.0.0.1\nprotected-mode no\n"
            f"dir {self.server.dir}\n"
            f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {service} 5000\n"
        )
        self.config = config

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.server.port}/{self.service}"

    def start(self) -> LocalSentinel:
        self.server.process = subprocess.Popen(
            [redis_binary(), str(self.config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.server.wait_ready()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = self.server.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            if str(self.master.port) in found:
                return self
            time.sleep(0.05)
        raise RuntimeError("the sentinel does not know its master")

    def remove(self) -> None:
        self.server.remove()
