"""``python -m worker`` is ``segment-export``."""

import sys

from worker.cli import main

sys.exit(main())
