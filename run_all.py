"""Run the whole pipeline: ``python run_all.py --help`` for the options."""

import sys

from ecom_pipeline.orchestrator import main

if __name__ == "__main__":
    sys.exit(main())
