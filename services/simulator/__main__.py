"""`python -m services.simulator`: simulated journeys as JSON lines (see `cli.py`)."""

import sys

from services.simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
