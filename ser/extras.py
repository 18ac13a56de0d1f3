"""How to install an optional extra, said the same way everywhere.

The distribution is called `ser` in pyproject.toml, but it is not published on the package index, where an
unrelated project already holds that name: `pip install 'ser[ui]'` would install the wrong thing. The
hint names what works from a checkout; `PUBLISHED` becomes the index name once there is one.
"""

from __future__ import annotations

PUBLISHED: str | None = None  # the distribution's name on the package index, once published


def install_hint(extra: str) -> str:
    """`pip install -e ".[ui]"` (in the ser checkout), plus the published name when there is one."""
    hint = f'pip install -e ".[{extra}]" in the ser checkout'
    if PUBLISHED:
        hint += f", or pip install '{PUBLISHED}[{extra}]'"
    return hint
