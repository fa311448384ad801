"""``python -m halab``: render a stack's files, run the local namespace lab and its drills."""

from halab.cli import main

raise SystemExit(main())
