"""Entry point: ``python -m bot run | check | chat | export``."""

from bot.cli import main

raise SystemExit(main())
