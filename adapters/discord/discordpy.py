"""discord.py, imported in one place so that its voice support stays quiet.

Parley uses no voice. discord.py imports the standard library's ``audioop`` for voice, which
warns on Python 3.11 and 3.12 that it is deprecated (a warning about discord.py that nobody
here can act on, and an error under ``-W error``), and it logs at every start that the voice
libraries are not installed. Parley's Discord modules import discord.py from here::

    from adapters.discord.discordpy import app_commands, discord
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="'audioop' is deprecated", category=DeprecationWarning
    )
    import discord
    import discord.gateway
    import discord.http
    from discord import app_commands

discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


def describe(exc: BaseException) -> str:
    """A failure in one short line for logs: Discord's status and text, else the kind."""
    if isinstance(exc, discord.HTTPException):
        return f"{exc.status} {exc.text or exc.__class__.__name__}"[:200]
    return exc.__class__.__name__


__all__ = ["app_commands", "describe", "discord"]
