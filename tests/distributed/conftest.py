"""The distributed tier: the pipeline on a Citus cluster (a coordinator and two workers on loopback)."""

from __future__ import annotations

import pytest

from citus import Cluster, citus_dir
from ecom_pipeline import distribution


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    scripts = citus_dir()
    if scripts is None:
        pytest.skip("Citus is not available: set CITUS_DIR to a folder with its build, install.sh and cluster.sh")
    cluster = Cluster.install(scripts, tmp_path_factory.mktemp("citus"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_db(cluster: Cluster):
    """A new database on the cluster, the extension on every node; dropped after the test."""
    with distribution.scratch_database(cluster.url(), prefix="citus") as url:
        yield url
