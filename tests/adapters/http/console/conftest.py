from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.api import Api
from tests.support.console import Console


@pytest.fixture
async def console(api: Api) -> AsyncIterator[Console]:
    made = Console(api)
    yield made
    await made.close()
