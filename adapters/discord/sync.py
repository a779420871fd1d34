"""Registering the ``/agent`` commands with Discord only when their definition changed.

Discord rate-limits command registration (a bulk overwrite is a few hundred a day per
application) and re-registering an unchanged tree does nothing useful, so by default
(``DISCORD_COMMAND_SYNC=auto``) a start compares a hash of the tree's definition with the
hash of the last registration, kept in the store under the application's id; only a change
is registered. One process does it at a time: it holds a claim on the application's commands
while it compares, registers and records; another process starting meanwhile leaves it to
that one. ``always`` registers at every start (and records the hash), ``never`` leaves the
commands to someone else (another deployment, or a script).

A failure to register is logged, never fatal: people can still talk to the agents. The hash
is then not recorded, so the next start tries again. A store that cannot be read or written
costs a registration, not the start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from adapters.discord.discordpy import app_commands, describe, discord
from bot.errors import StoreError
from memory.base import Coordination

logger = logging.getLogger(__name__)

SyncMode = Literal["auto", "always", "never"]
CLAIM_SECONDS = 120.0
"""How long one process holds the registration (a bulk overwrite takes a second; Discord may
make it wait out a rate limit)."""


def fingerprint(tree: app_commands.CommandTree[discord.Client]) -> str:
    """The SHA-256 of the global commands' definition, exactly as it is sent to Discord."""
    payload = [command.to_dict(tree) for command in tree.get_commands()]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def record_name(application_id: int) -> str:
    """Where the hash of an application's last registration is kept in the store."""
    return f"discord.commands.{application_id}"


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What a start did about the commands: ``registered`` (their names), ``unchanged``,
    ``elsewhere`` (another process holds the registration), ``off`` (``never``) or
    ``failed`` (Discord refused; logged)."""

    done: Literal["registered", "unchanged", "elsewhere", "off", "failed"]
    names: tuple[str, ...] = ()


async def sync_commands(
    tree: app_commands.CommandTree[discord.Client],
    *,
    store: Coordination,
    mode: SyncMode,
    application_id: int,
    owner: str | None = None,
) -> SyncOutcome:
    """Register ``tree``'s commands as ``mode`` says (see the module's docstring)."""
    if mode == "never":
        logger.info("DISCORD_COMMAND_SYNC=never: the /agent commands are not registered")
        return SyncOutcome("off")
    digest = fingerprint(tree)
    name = record_name(application_id)
    if mode == "always":
        return await _register(tree, store, name, digest)
    owner = owner or uuid.uuid4().hex
    try:
        if not await store.claim(key=name, owner=owner, ttl_seconds=CLAIM_SECONDS):
            logger.info("another process is registering the slash commands; left to it")
            return SyncOutcome("elsewhere")
    except StoreError as exc:
        logger.warning("could not read the slash commands' registration (%s); registering", exc)
        return await _register(tree, store, name, digest)
    try:
        if await _stored(store, name) == digest:
            logger.info("the slash commands are registered and unchanged: not registered again")
            return SyncOutcome("unchanged")
        return await _register(tree, store, name, digest)
    finally:
        try:
            await store.release_claim(key=name, owner=owner)
        except StoreError as exc:  # it expires by itself
            logger.warning("could not release the slash commands' claim: %s", exc)


async def _stored(store: Coordination, name: str) -> str | None:
    try:
        return await store.get_value(name=name)
    except StoreError as exc:
        logger.warning("could not read the slash commands' registration (%s); registering", exc)
        return None


async def _register(
    tree: app_commands.CommandTree[discord.Client],
    store: Coordination,
    name: str,
    digest: str,
) -> SyncOutcome:
    problem: str | None = None
    try:
        synced = await tree.sync()
    except (discord.HTTPException, app_commands.AppCommandError) as exc:
        problem = describe(exc)
    if problem is not None:
        logger.error("could not register the /agent commands with Discord: %s", problem)
        return SyncOutcome("failed")
    names = tuple(command.name for command in synced)
    logger.info("registered the slash commands: %s", ", ".join(names))
    try:
        await store.set_value(name=name, value=digest)
    except StoreError as exc:
        logger.warning("could not record the slash commands' registration: %s", exc)
    return SyncOutcome("registered", names)
