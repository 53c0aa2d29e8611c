"""Bad text in any field of any scenario's race requests, on every backend: a 4xx in the one
error shape, and nothing changed. The requests come from the catalogue's recipes, so a new
scenario is covered as soon as it is registered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, start_lab
from toctou.catalogue import RequestInfo, fetch_catalogue
from toctou.lab.process import LabProcess

BAD_TEXT = {"nul": "a\x00b", "control": "a\x07b", "blank": "   ", "bom": "\ufeffada"}


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    yield from start_lab(request.param, 1)


def _text_fields(body: dict[str, Any]) -> list[str]:
    return [name for name, value in body.items() if isinstance(value, str)]


def _requests(lab: LabProcess) -> list[tuple[str, RequestInfo]]:
    return [
        (name, request)
        for name, info in fetch_catalogue(lab.base_url).items()
        for recipe in info.recipes().values()
        for request in recipe.requests
        if request.json_body and _text_fields(request.json_body)
    ]


@pytest.mark.parametrize("bad", list(BAD_TEXT), ids=list(BAD_TEXT))
def test_bad_text_in_any_recipe_field_is_422_and_changes_nothing(lab: LabProcess, bad: str) -> None:
    base = lab.base_url
    httpx.post(f"{base}/lab/reset", json={}).raise_for_status()
    before = httpx.get(f"{base}/lab/audit").json()
    tried = 0
    for name, request in _requests(lab):
        assert request.json_body is not None
        for field in _text_fields(request.json_body):
            body = {**request.json_body, field: BAD_TEXT[bad]}
            for strategy in ("vulnerable",):
                reply = httpx.request(
                    request.method,
                    base + request.path.replace("{strategy}", strategy),
                    json=body,
                    headers=request.headers,
                )
                tried += 1
                assert reply.status_code == 422, (name, field, reply.text)
                assert reply.json()["error"] == "invalid_request", (name, field)
    assert tried >= 5  # inventory's buyer is not in its recipe; coupon, counter, signup, ... are
    assert httpx.get(f"{base}/lab/audit").json() == before
