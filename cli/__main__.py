"""``python -m cli`` is the ``recsys`` command line."""

from cli.main import main

raise SystemExit(main())
