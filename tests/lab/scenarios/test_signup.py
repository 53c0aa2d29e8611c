"""The sign-up scenario: one account per username and email, the two tables, bad input, and how
the `lock` and `unique` strategies answer on each database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, start_lab
from tests.lab.helpers import audit_scenario, reset_scenario, send_together
from toctou.lab.process import LabProcess
from toctou.lab.scenarios.signup.strategies import STRATEGIES

STRATEGY_NAMES = list(STRATEGIES)


def reset(lab: LabProcess) -> None:
    reset_scenario(lab, "signup")


def register(
    lab: LabProcess, strategy: str, username: str, email: str, **extra: Any
) -> httpx.Response:
    return httpx.post(
        f"{lab.base_url}/signup/{strategy}/register",
        json={"username": username, "email": email, **extra},
        timeout=30,
    )


def audit(lab: LabProcess) -> dict[str, Any]:
    return audit_scenario(lab, "signup")


def users(lab: LabProcess, **params: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{lab.base_url}/signup/users", params=params)
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()
    return found


@pytest.fixture
def lab(sqlite_lab: LabProcess) -> LabProcess:
    reset(sqlite_lab)
    return sqlite_lab


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_a_sign_up_writes_one_row_and_names_it(lab: LabProcess, strategy: str) -> None:
    reply = register(lab, strategy, "Ada.L", "Ada@Example.ORG")
    assert reply.status_code == 201, reply.text
    body = reply.json()
    table = "signup_unique_users" if strategy == "unique" else "signup_users"
    prefix = "unique user" if strategy == "unique" else "user"
    assert body["effect"] == f"{prefix} {body['user']['id']}"
    assert body["user"]["username"] == "ada.l"  # stored lowercased
    assert body["user"]["email"] == "ada@example.org"
    assert body["user"]["table"] == table
    assert body["user"]["strategy"] == strategy
    assert body["attempts"] == 1
    [row] = users(lab, username="ADA.L")
    assert row["id"] == body["user"]["id"]
    assert row["table"] == table
    found = audit(lab)
    assert (found["holds"], found["damage"], found["effects"]) == (True, 0, 1)
    assert found["state"][table]["rows"] == 1


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
@pytest.mark.parametrize(
    ("username", "email"),
    [
        pytest.param("ada", "ada@example.org", id="same-both"),
        pytest.param("ADA", "other@example.org", id="same-username-other-case"),
        pytest.param("grace", "ADA@example.org", id="same-email-other-case"),
    ],
)
def test_a_taken_name_or_email_is_409_and_writes_nothing(
    lab: LabProcess, strategy: str, username: str, email: str
) -> None:
    assert register(lab, strategy, "ada", "ada@example.org").status_code == 201
    before = audit(lab)
    reply = register(lab, strategy, username, email)
    assert reply.status_code == 409, reply.text
    assert reply.json()["status"] == "rejected"
    assert reply.json()["reason"] == "taken"
    assert audit(lab) == before


def test_the_unique_table_is_its_own(lab: LabProcess) -> None:
    """The check-then-insert strategies and `unique` keep separate tables, so the same name
    signs up once in each, and the audit counts both."""
    assert register(lab, "vulnerable", "ada", "ada@example.org").status_code == 201
    assert register(lab, "unique", "ada", "ada@example.org").status_code == 201
    assert sorted(r["table"] for r in users(lab, username="ada")) == [
        "signup_unique_users",
        "signup_users",
    ]
    assert audit(lab)["effects"] == 2
    assert audit(lab)["damage"] == 0


def test_duplicates_are_counted_and_named(lab: LabProcess) -> None:
    """The damage: rows whose username or email an earlier row holds (vulnerable, 50 ms)."""
    replies = send_together(
        f"{lab.base_url}/signup/vulnerable/register",
        5,
        body={"username": "ada", "email": "ada@example.org"},
        headers={"X-Race-Window-Ms": "50"},
    )
    created = [r for r in replies if r.status == 201]
    assert len(created) > 1
    found = audit(lab)
    assert found["damage"] == len(created) - 1
    assert found["effects"] == len(created)
    assert not found["holds"]
    violations = {i["name"]: i["violations"] for i in found["invariants"]}
    assert f"held by {len(created)} rows" in violations["unique_usernames"][0]
    assert f"held by {len(created)} rows" in violations["unique_emails"][0]
    assert found["state"]["signup_users"]["duplicated"] == ["ada", "ada@example.org"]
    assert len(users(lab, username="ada")) == len(created)
    reset(lab)
    assert audit(lab)["damage"] == 0
    assert users(lab, username="ada") == []


# ---- bad input -------------------------------------------------------------------------------


@pytest.fixture
def unchanged(lab: LabProcess) -> Iterator[LabProcess]:
    """One account (grace) in each table; the test must leave both exactly as they are."""
    assert register(lab, "vulnerable", "grace", "grace@example.org").status_code == 201
    assert register(lab, "unique", "grace", "grace@example.org").status_code == 201
    before = (audit(lab), users(lab))
    yield lab
    assert (audit(lab), users(lab)) == before


GOOD = {"username": "ada", "email": "ada@example.org"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({**GOOD, "username": ""}, "username", id="username-empty"),
        pytest.param({**GOOD, "username": "a" * 65}, "username", id="username-65"),
        pytest.param({**GOOD, "username": "ada lovelace"}, "username", id="username-space"),
        pytest.param({**GOOD, "username": "ada'--"}, "username", id="username-quote"),
        pytest.param({**GOOD, "username": 7}, "username", id="username-number"),
        pytest.param({**GOOD, "username": None}, "username", id="username-null"),
        pytest.param({"email": "ada@example.org"}, "username", id="username-missing"),
        pytest.param({**GOOD, "email": "ada.example.org"}, "email", id="email-no-at"),
        pytest.param({**GOOD, "email": "ada@@example.org"}, "email", id="email-two-ats"),
        pytest.param({**GOOD, "email": "a@b@c"}, "email", id="email-two-ats-apart"),
        pytest.param({**GOOD, "email": "@example.org"}, "email", id="email-no-name"),
        pytest.param({**GOOD, "email": "ada@"}, "email", id="email-no-domain"),
        pytest.param({**GOOD, "email": "ada @x.org"}, "email", id="email-space"),
        pytest.param({**GOOD, "email": ""}, "email", id="email-empty"),
        pytest.param({**GOOD, "email": "a@" + "b" * 253}, "email", id="email-255"),
        pytest.param({**GOOD, "email": ["ada@example.org"]}, "email", id="email-list"),
        pytest.param({"username": "ada"}, "email", id="email-missing"),
        pytest.param({**GOOD, "password": "hunter2"}, "password", id="unknown-field"),
    ],
)
def test_invalid_sign_up_is_422(unchanged: LabProcess, body: dict[str, Any], field: str) -> None:
    """Checked before any strategy runs (vulnerable: the one that would insert anything)."""
    reply = httpx.post(f"{unchanged.base_url}/signup/vulnerable/register", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()
    assert error["error"] == "invalid_request"
    assert field in error["message"]
    assert any(field in d["loc"] for d in error["details"])


def test_an_email_of_254_characters_is_fine(lab: LabProcess) -> None:
    email = "a@" + "b" * 248 + ".org"
    reply = register(lab, "unique", "ada", email)
    assert reply.status_code == 201, reply.text
    assert reply.json()["user"]["email"] == email


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"username": "ada"'])
def test_malformed_json_is_400(unchanged: LabProcess, body: bytes) -> None:
    reply = httpx.post(
        f"{unchanged.base_url}/signup/unique/register",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "malformed_json"


def test_unknown_strategy_is_404_naming_the_valid_ones(unchanged: LabProcess) -> None:
    reply = httpx.post(f"{unchanged.base_url}/signup/yolo/register", json=GOOD)
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"] == "unknown_strategy"
    assert reply.json()["valid"] == STRATEGY_NAMES


@pytest.mark.parametrize(
    "query",
    ["username=", "username=a%20b", f"username={'a' * 65}", "limit=0", "limit=x", "email="],
)
def test_bad_user_listing_is_422(unchanged: LabProcess, query: str) -> None:
    reply = httpx.get(f"{unchanged.base_url}/signup/users?{query}")
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"


def test_the_audit_takes_no_parameters(unchanged: LabProcess) -> None:
    reply = httpx.get(f"{unchanged.base_url}/lab/audit?scenario=signup&username=ada")
    assert reply.status_code == 422, reply.text


# ---- per database ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def backend_lab(request: pytest.FixtureRequest) -> Iterator[tuple[str, LabProcess]]:
    for lab in start_lab(request.param, 1):
        yield request.param, lab


def test_lock_answers_taken_or_busy_never_500(backend_lab: tuple[str, LabProcess]) -> None:
    """PostgreSQL has no row to lock (duplicates); MariaDB's gap locks deadlock, and each loser
    answers 503 database_busy (Retry-After), never a 500; SQLite's BEGIN IMMEDIATE queues them."""
    backend, lab = backend_lab
    reset(lab)
    replies = send_together(
        f"{lab.base_url}/signup/lock/register",
        10,
        body=GOOD,
        headers={"X-Race-Window-Ms": "50"},
    )
    answers = Counter(
        (r.status, r.body.get("reason") or r.body.get("error")) for r in replies if r.status != 201
    )
    created = sum(r.status == 201 for r in replies)
    assert set(answers) <= {(409, "taken"), (503, "database_busy")}, answers
    found = audit(lab)
    assert found["effects"] == created
    if backend == "postgresql":
        assert created > 1
        assert found["damage"] == created - 1
    else:
        assert created == 1
        assert found["damage"] == 0
    if backend != "mariadb":
        assert (503, "database_busy") not in answers


def test_unique_refuses_the_second_row_on_every_backend(
    backend_lab: tuple[str, LabProcess],
) -> None:
    """ON CONFLICT DO NOTHING (PostgreSQL, SQLite) and INSERT IGNORE (MariaDB) alike: one row,
    the others 409 taken, whether the name or only the email collides."""
    _backend, lab = backend_lab
    reset(lab)
    replies = send_together(
        f"{lab.base_url}/signup/unique/register",
        10,
        body=GOOD,
        headers={"X-Race-Window-Ms": "20"},
    )
    assert sorted(r.status or 0 for r in replies) == [201] + [409] * 9
    assert {r.body["reason"] for r in replies if r.status == 409} == {"taken"}
    email_only = register(lab, "unique", "grace", "ADA@example.org")
    assert email_only.status_code == 409, email_only.text
    fresh = register(lab, "unique", "grace", "grace@example.org")
    assert fresh.status_code == 201, fresh.text
    found = audit(lab)
    assert (found["damage"], found["effects"]) == (0, 2)
    assert found["state"]["signup_unique_users"]["rows"] == 2


def test_names_differ_by_accent_and_case_on_every_backend_alike(
    backend_lab: tuple[str, LabProcess],
) -> None:
    """Columns compare byte for byte, MariaDB too (its default collation would call 'é' 'e')."""
    _backend, lab = backend_lab
    reset(lab)
    assert register(lab, "unique", "u2", "éééé@example.org").status_code == 201
    assert register(lab, "unique", "u3", "eeee@example.org").status_code == 201
    assert register(lab, "unique", "u4", "eeee@example.org").status_code == 409
    assert audit(lab)["damage"] == 0
