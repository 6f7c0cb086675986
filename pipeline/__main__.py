"""``python -m pipeline`` is the ``recsys`` command line."""

from pipeline.cli import main

raise SystemExit(main())
