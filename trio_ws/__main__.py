"""``python -m trio_ws`` is the ``trio-ws`` command."""

from .cli import main

raise SystemExit(main())
