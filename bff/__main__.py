"""``python -m bff``: the same entry point as the ``harvester-upgrade-bff`` script."""

from bff.cli import main

raise SystemExit(main())
