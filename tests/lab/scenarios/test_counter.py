"""The counter scenario: every strategy likes once per user one at a time, the recipe's race
showing both kinds of damage, `increment` as the false fix for duplicates, users compared exactly
on every backend, and bad input changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, start_lab
from tests.lab.helpers import audit_scenario, reset_scenario, send_together
from toctou.catalogue import fetch_catalogue, recipe_plan
from toctou.engine import run_race
from toctou.lab.process import LabProcess
from toctou.lab.scenarios.counter.strategies import STRATEGIES

ALL = list(STRATEGIES)
POST = 700  # this module's own post; the recipe races the seed's post 1
ROUNDS = 5  # rounds a racy strategy gets to show its damage


def post(lab: LabProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{lab.base_url}{path}", timeout=30, **kwargs)


def reset(lab: LabProcess, **fields: Any) -> dict[str, Any]:
    return reset_scenario(lab, "counter", **fields)


def audit(lab: LabProcess, **params: int) -> dict[str, Any]:
    """The counter audit (``audit_scenario``); ``checks`` maps invariant names to holds."""
    found = audit_scenario(lab, "counter", **params)
    return {**found, "checks": {i["name"]: i["holds"] for i in found["invariants"]}}


def post_state(lab: LabProcess, post_id: int) -> dict[str, Any]:
    reply = httpx.get(f"{lab.base_url}/counter/posts/{post_id}", timeout=30)
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def like(lab: LabProcess, strategy: str, user: str, post_id: int = POST) -> httpx.Response:
    return post(lab, f"/counter/{strategy}/like", json={"post_id": post_id, "user": user})


@pytest.fixture(scope="module", params=BACKENDS)
def any_lab(request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    """A one-worker lab on each backend in turn."""
    yield from start_lab(request.param, 1)


@pytest.mark.parametrize("strategy", ALL)
def test_each_strategy_likes_once_per_user(sqlite_lab: LabProcess, strategy: str) -> None:
    assert reset(sqlite_lab, post_id=POST, title="Cats")["likes"] == 0
    ada = like(sqlite_lab, strategy, "ada")
    assert ada.status_code == 201, ada.text
    body = ada.json()
    assert body["effect"] == f"like {body['like']['id']}"
    assert (body["like"]["post_id"], body["like"]["user"]) == (POST, "ada")
    again = like(sqlite_lab, strategy, "ada")
    assert again.status_code == 409, again.text
    assert again.json()["status"] == "rejected"
    assert again.json()["reason"] == "already_liked"
    assert like(sqlite_lab, strategy, "bob").status_code == 201
    assert post_state(sqlite_lab, POST) == {
        "id": POST,
        "title": "Cats",
        "likes": 2,
        "like_rows": 2,
        "distinct_users": 2,
        "lost_updates": 0,
        "duplicate_likes": 0,
        "damage": 0,
    }
    found = audit(sqlite_lab, post_id=POST)
    assert found["holds"]
    assert (found["damage"], found["effects"]) == (0, 2)


def test_the_recipe_shows_lost_updates_and_duplicate_likes_at_once(
    sqlite_lab: LabProcess,
) -> None:
    recipe = fetch_catalogue(sqlite_lab.base_url)["counter"].race
    plan = recipe_plan(sqlite_lab.base_url, recipe, "vulnerable", window_ms=50, gate_wait_ms=20)
    for _round in range(ROUNDS):
        result = run_race(plan)
        found = audit(sqlite_lab)
        (seed,) = found["posts"]
        if seed["lost_updates"] and seed["duplicate_likes"]:
            break
    assert seed["lost_updates"] > 0, found
    assert seed["duplicate_likes"] > 0, found
    assert found["damage"] == seed["lost_updates"] + seed["duplicate_likes"]
    assert found["checks"] == {"count_matches_rows": False, "one_like_per_user": False}
    assert result.verdict.outcome == "race", result.verdict


def test_increment_counts_every_like_but_lets_one_user_like_twice(
    sqlite_lab: LabProcess,
) -> None:
    """The false fix for duplicates: the count is never wrong, the likes are."""
    for _round in range(ROUNDS):
        reset(sqlite_lab, post_id=POST)
        replies = send_together(
            f"{sqlite_lab.base_url}/counter/increment/like",
            5,
            body={"post_id": POST, "user": "ada"},
            headers={"X-Race-Window-Ms": "50"},
        )
        state = post_state(sqlite_lab, POST)
        assert state["likes"] == state["like_rows"] == sum(r.status == 201 for r in replies)
        assert audit(sqlite_lab, post_id=POST)["checks"]["count_matches_rows"]
        if state["duplicate_likes"]:
            break
    assert state["distinct_users"] == 1
    assert state["duplicate_likes"] == state["like_rows"] - 1 > 0
    assert not audit(sqlite_lab, post_id=POST)["checks"]["one_like_per_user"]


@pytest.mark.parametrize("strategy", ["unique", "version"])
def test_users_are_compared_exactly_on_every_backend(any_lab: LabProcess, strategy: str) -> None:
    """MariaDB's default collation would make 'Ada', 'ada' and 'ada ' one user (and the unique
    index refuse the second); the lab's columns compare bytes there too."""
    reset(any_lab, post_id=POST)
    users = ["ada", "Ada", "ada ", "ädä"]
    assert [like(any_lab, strategy, u).status_code for u in users] == [201] * 4
    assert [like(any_lab, strategy, u).status_code for u in users] == [409] * 4
    state = post_state(any_lab, POST)
    assert (state["likes"], state["distinct_users"], state["damage"]) == (4, 4, 0)


@pytest.mark.parametrize("strategy", ["unique", "version"])
def test_a_burst_from_one_user_likes_once_on_every_backend(
    any_lab: LabProcess, strategy: str
) -> None:
    reset(any_lab, post_id=POST)
    replies = send_together(
        f"{any_lab.base_url}/counter/{strategy}/like",
        8,
        body={"post_id": POST, "user": "ada"},
        headers={"X-Race-Window-Ms": "20"},
    )
    assert sorted(r.status or 0 for r in replies) == [201] + [409] * 7, replies
    assert {r.body["reason"] for r in replies if r.status == 409} == {"already_liked"}
    state = post_state(any_lab, POST)
    assert (state["likes"], state["like_rows"], state["damage"]) == (1, 1, 0)


# Bad input: a clear 4xx, and the data exactly as before.


@pytest.fixture
def lab(sqlite_lab: LabProcess) -> Iterator[LabProcess]:
    """The shared lab with the post liked once by ada; the audit must not change in the test."""
    reset(sqlite_lab, post_id=POST)
    assert like(sqlite_lab, "unique", "ada").status_code == 201
    before = audit(sqlite_lab)
    yield sqlite_lab
    assert audit(sqlite_lab) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"post_id": POST, "user": ""}, "user", id="user-empty"),
        pytest.param({"post_id": POST, "user": "u" * 65}, "user", id="user-too-long"),
        pytest.param({"post_id": POST, "user": 7}, "user", id="user-number"),
        pytest.param({"post_id": POST, "user": None}, "user", id="user-null"),
        pytest.param({"post_id": POST, "user": "a\x00b"}, "user", id="user-nul"),
        pytest.param({"post_id": POST, "user": "ada\t"}, "user", id="user-tab"),
        pytest.param({"post_id": POST}, "user", id="user-missing"),
        pytest.param({"user": "bob"}, "post_id", id="post-missing"),
        pytest.param({"post_id": 0, "user": "bob"}, "post_id", id="post-zero"),
        pytest.param({"post_id": -1, "user": "bob"}, "post_id", id="post-negative"),
        pytest.param({"post_id": str(POST), "user": "bob"}, "post_id", id="post-string"),
        pytest.param({"post_id": float(POST), "user": "bob"}, "post_id", id="post-float"),
        pytest.param({"post_id": True, "user": "bob"}, "post_id", id="post-bool"),
        pytest.param({"post_id": 2**31, "user": "bob"}, "post_id", id="post-2^31"),
        pytest.param({"post_id": POST, "user": "bob", "count": 5}, "count", id="unknown-field"),
    ],
)
@pytest.mark.parametrize("strategy", ["vulnerable", "unique"])
def test_invalid_like_body_is_422(
    lab: LabProcess, body: dict[str, Any], field: str, strategy: str
) -> None:
    reply = post(lab, f"/counter/{strategy}/like", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()
    assert error["error"] == "invalid_request"
    assert error["details"][0]["loc"] == ["body", field]


@pytest.mark.parametrize("body", [b"", b"[]", b"1", b"{", b'{"post_id": 700, "user": "\\udc00"}'])
def test_body_that_is_not_a_like_is_4xx(lab: LabProcess, body: bytes) -> None:
    reply = post(
        lab, "/counter/unique/like", content=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code in (400, 422), reply.text
    assert reply.json()["error"] in ("invalid_request", "malformed_json")


@pytest.mark.parametrize("strategy", ALL)
def test_unknown_post_is_404_and_a_second_like_409_for_every_strategy(
    lab: LabProcess, strategy: str
) -> None:
    missing = like(lab, strategy, "bob", post_id=999_999)
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"] == "post_not_found"
    again = like(lab, strategy, "ada")
    assert again.status_code == 409, again.text
    assert again.json()["reason"] == "already_liked"


def test_unknown_strategy_is_404_naming_the_valid_ones(lab: LabProcess) -> None:
    reply = like(lab, "yolo", "bob")
    assert reply.status_code == 404
    assert reply.json()["error"] == "unknown_strategy"
    assert reply.json()["valid"] == ALL


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/counter/posts/999999", 404, "post_not_found"),
        ("/counter/posts/0", 422, "invalid_request"),
        ("/counter/posts/abc", 422, "invalid_request"),
        ("/lab/audit?scenario=counter&post_id=999999", 404, "post_not_found"),
        ("/lab/audit?scenario=counter&post_id=0", 422, "invalid_request"),
        ("/lab/audit?scenario=counter&user=ada", 422, "invalid_request"),
    ],
)
def test_bad_reads_are_4xx(lab: LabProcess, path: str, status: int, error: str) -> None:
    reply = httpx.get(f"{lab.base_url}{path}")
    assert reply.status_code == status, reply.text
    assert reply.json()["error"] == error


@pytest.mark.parametrize(
    "fields",
    [
        {"post_id": 0},
        {"post_id": "700"},
        {"post_id": POST, "title": ""},
        {"post_id": POST, "likes": 3},
    ],
)
def test_invalid_reset_is_422(lab: LabProcess, fields: dict[str, Any]) -> None:
    reply = post(lab, "/lab/reset", json={"scenario": "counter", **fields})
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"
