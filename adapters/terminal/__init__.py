"""The terminal chat (``python -m bot chat``); "console" names the web console alone."""

from adapters.terminal.adapter import TerminalAdapter, TerminalSession

__all__ = ["TerminalAdapter", "TerminalSession"]
