"""URLs as they may be shown: passwords masked wherever a URL carries one."""

from __future__ import annotations

import pytest

from toctou.urls import safe_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "mysql://root@h/db?password=pw&charset=utf8",
            "mysql://root@h/db?password=***&charset=utf8",
        ),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("sqlite:////tmp/lab.db", "sqlite:////tmp/lab.db"),
        ("http://[::1/", "(a URL that could not be read)"),
    ],
)
def test_passwords_are_masked(url: str, shown: str) -> None:
    assert safe_url(url) == shown
    assert "pw" not in safe_url(url)
