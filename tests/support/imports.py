"""What a fresh interpreter has imported after running a script: for tests that a heavy
dependency loads only when a configuration uses it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.process import REPO


def imported(script: str, *packages: str) -> list[str]:
    """The modules of ``packages`` (each a package or module name) that a new
    ``python -c script`` has imported when it ends."""
    probe = f"{script}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    ran = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    modules: list[str] = json.loads(ran.stdout.strip().splitlines()[-1])
    return [m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages)]
