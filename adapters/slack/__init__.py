"""Parley on Slack: one module per role, the same names as the other platforms' packages.

- :mod:`~adapters.slack.adapter`: the adapter (Bolt's app, its transports, the listeners);
- :mod:`~adapters.slack.routes`: ``/slack/events``, mounted on the bot's HTTP server;
- :mod:`~adapters.slack.payloads`: Slack's wire payloads, typed, and what is made of them;
- :mod:`~adapters.slack.messages`: what the bot does with a message;
- :mod:`~adapters.slack.reply`: a reply growing in a thread;
- :mod:`~adapters.slack.commands`: ``/agent``'s outcomes as Slack messages;
- :mod:`~adapters.slack.agent`: Slack's agent surface (session status and Stop, loading
  messages, titles, suggested prompts);
- :mod:`~adapters.slack.blocks`, :mod:`~adapters.slack.format`, :mod:`~adapters.slack.users`:
  Block Kit, Slack's markup, and who people are.
"""

from adapters.slack.adapter import SlackAdapter, SlackStartError

__all__ = ["SlackAdapter", "SlackStartError"]
