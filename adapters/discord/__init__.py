"""Parley on Discord: one module per role, the same names as the other platforms' packages.

- :mod:`~adapters.discord.adapter`: the adapter (discord.py's client, its lifecycle, intake);
- :mod:`~adapters.discord.payloads`: reading a Discord message;
- :mod:`~adapters.discord.messages`: what a recorded message asks and where its reply goes;
- :mod:`~adapters.discord.reply`: a reply growing in a channel;
- :mod:`~adapters.discord.commands`: ``/agent``'s outcomes as Discord messages and views;
- :mod:`~adapters.discord.routing`, :mod:`~adapters.discord.endpoints`,
  :mod:`~adapters.discord.discordpy`: where Parley answers, which API it talks to, and
  discord.py imported quietly.
"""

from adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
