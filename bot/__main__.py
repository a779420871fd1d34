"""Entry point: ``python -m bot COMMAND`` (``--help`` lists them; see :mod:`bot.cli`)."""

from bot.cli import main

raise SystemExit(main())
