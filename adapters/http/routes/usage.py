"""``/api/v1/usage``: the tokens the model used and what they cost (issue #17).

Usage is kept per agent and conversation, not per place: a key limited to some agents sees
only theirs; a key limited to platforms or workspaces sees one conversation's usage at a time
(one it may see), never totals that would include other places.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from adapters.http.auth import Reader, ServicesDep, check_agent
from adapters.http.errors import ApiError, ErrorBody
from adapters.http.routes.conversations import PLACE_REFUSED, load
from adapters.http.schemas import AgentId, UsageReportBody
from bot.keys import place_limited
from memory.base import USAGE_GROUPS, UsageGroup, UsageQuery

router = APIRouter(prefix="/usage", tags=["usage"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 422, 429, 503)
}
GROUPS_HELP = f"comma-separated, of {', '.join(USAGE_GROUPS)}; empty for one total"


def parse_groups(text: str) -> tuple[UsageGroup, ...]:
    """``agent,day`` as groups (in :data:`USAGE_GROUPS` order); 422 for an unknown one."""
    words = [word.strip() for word in text.split(",") if word.strip()]
    for word in words:
        if word not in USAGE_GROUPS:
            raise ApiError(422, f"group_by: {word[:40]!r} is not one of {', '.join(USAGE_GROUPS)}")
    return tuple(group for group in USAGE_GROUPS if group in words)


@router.get("", response_model=UsageReportBody, responses=ERRORS, response_model_by_alias=True)
async def usage(
    *,
    key: Reader,
    services: ServicesDep,
    agent: Annotated[AgentId | None, Query(max_length=64)] = None,
    conversation: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        datetime | None, Query(alias="from", description="inclusive; UTC unless it says")
    ] = None,
    until: Annotated[datetime | None, Query(alias="to", description="not included")] = None,
    group_by: Annotated[str, Query(max_length=100, description=GROUPS_HELP)] = "agent",
) -> UsageReportBody:
    """Tokens used (as the model reported them, or counted here when it did not) and their
    cost from the price file; a model without a price makes a cost `null`, never 0."""
    if agent is not None:
        check_agent(key, agent)
    if conversation is not None:
        await load(services, conversation, key)
    elif place_limited(key):
        raise ApiError(403, f"{PLACE_REFUSED}: ask for one conversation's usage")
    query = UsageQuery(
        agent_id=agent,
        conversation_id=conversation,
        agent_ids=tuple(key.agents),
        since=_utc(since),
        until=_utc(until),
        group_by=parse_groups(group_by),
    )
    ledger = services.engine.usage
    await ledger.flush()
    return UsageReportBody.of(await ledger.report(query))


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
