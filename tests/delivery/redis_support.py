"""A private redis-server (the real Debian binary) that a test may stop and restart.

The shared Redis on 6379 serves other engineers' runs and CI jobs; stopping it
would break them. Tests that need Redis to die start their own server on a
free port instead, and point the app's cache and Celery broker at it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests import services

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """One redis-server process on its own port, without persistence."""

    def __init__(self, workdir: Path) -> None:
        if not Path(REDIS_SERVER).exists():
            services._missing("needs redis-server (apt-get install redis-server)")
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("a")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 10
        while not services.redis_answers(self.url):
            if time.monotonic() > deadline:
                raise AssertionError("private redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
        assert not services.redis_answers(self.url)
