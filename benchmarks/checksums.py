"""Content checksums of production, the quarantine and the warehouse: two runs gave the same answers.

    python benchmarks/checksums.py URL [URL ...]

See :mod:`ecom_pipeline.checksums`, where the comparison lives (the distributed tests use it too).
"""

import sys

from ecom_pipeline.checksums import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
