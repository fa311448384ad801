"""``python -m halab.e2e``."""

import sys

from halab.e2e.cli import main

sys.exit(main())
