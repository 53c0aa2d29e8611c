"""The login scenario: 5 failed checks per window and then 429, the right password counted apart,
windows preset by the reset (open, or over), bursts on every backend, and bad input changing
nothing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, start_lab
from tests.lab.helpers import audit_scenario, reset_scenario
from toctou.engine import RacePlan, RaceRequest, run_race
from toctou.lab.process import LabProcess
from toctou.lab.scenarios.login.policy import SEED_PASSWORD
from toctou.lab.scenarios.login.strategies import STRATEGIES

ALL = list(STRATEGIES)
FIXES = ["atomic", "lock"]
WRONG = "not-the-password"


def login(
    lab: LabProcess, strategy: str, password: str = WRONG, username: str = "ada"
) -> httpx.Response:
    return httpx.post(
        f"{lab.base_url}/login/{strategy}/login",
        json={"username": username, "password": password},
        timeout=30,
    )


def reset(lab: LabProcess, **fields: int) -> dict[str, Any]:
    return reset_scenario(lab, "login", **fields)


def audit(lab: LabProcess) -> dict[str, Any]:
    return audit_scenario(lab, "login")


def user(lab: LabProcess, username: str = "ada") -> dict[str, Any]:
    reply = httpx.get(f"{lab.base_url}/login/users/{username}", timeout=30)
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def statuses(replies: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in replies]


def burst(
    lab: LabProcess, strategy: str, passwords: list[str], window_ms: float = 50
) -> list[tuple[int | None, Any]]:
    """One login per password, released together (last-byte sync): (status, body) each."""
    headers = (("Content-Type", "application/json"), ("X-Race-Window-Ms", f"{window_ms:g}"))
    plan = RacePlan(
        requests=tuple(
            RaceRequest(
                f"{lab.base_url}/login/{strategy}/login",
                "POST",
                headers,
                json.dumps({"username": "ada", "password": p}).encode(),
            )
            for p in passwords
        ),
        technique="last-byte",
        gate_wait_ms=20,
    )
    attempts = run_race(plan).rounds[0].attempts
    assert [a.error for a in attempts if a.error] == []
    return [(a.status, json.loads(a.body)) for a in attempts]


@pytest.fixture
def lab(sqlite_lab: LabProcess) -> LabProcess:
    """The shared SQLite lab with the login at its seed: ada, no failures, no checks."""
    state = reset(sqlite_lab)
    assert state["users"][0] | {"window_started_at": None} == {
        "username": "ada",
        "failures": 0,
        "window_started_at": None,
        "checks": 0,
        "failed_checks": 0,
        "over_limit": 0,
    }
    return sqlite_lab


@pytest.fixture
def unchanged(lab: LabProcess) -> Iterator[LabProcess]:
    """The seeded lab with one failed check made; the audit must be the same after the test."""
    assert login(lab, "atomic").status_code == 401
    before = audit(lab)
    yield lab
    assert audit(lab) == before


# --- the limit, one login at a time ---------------------------------------------------------


@pytest.mark.parametrize("strategy", ALL)
def test_the_right_password_is_200_naming_its_check(lab: LabProcess, strategy: str) -> None:
    reply = login(lab, strategy, SEED_PASSWORD)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok"
    assert body["username"] == "ada"
    assert body["effect"].startswith("check ")
    found = user(lab)
    assert (found["checks"], found["failed_checks"], found["failures"]) == (1, 0, 0)
    assert audit(lab)["effects"] == 1


@pytest.mark.parametrize("strategy", ALL)
def test_five_wrong_passwords_then_429_even_for_the_right_one(
    lab: LabProcess, strategy: str
) -> None:
    wrong = [login(lab, strategy) for _ in range(5)]
    assert statuses(wrong) == [401] * 5
    for reply in wrong:
        body = reply.json()
        assert (body["status"], body["reason"]) == ("rejected", "wrong_password")
        assert body["effect"].startswith("check ")
    assert len({r.json()["effect"] for r in wrong}) == 5
    for password in (WRONG, SEED_PASSWORD):
        limited = login(lab, strategy, password)
        assert limited.status_code == 429, limited.text
        body = limited.json()
        assert body["reason"] == "rate_limited"
        assert "effect" not in body
        wait = int(limited.headers["Retry-After"])
        assert 0 < wait <= 900
        assert body["retry_after_s"] == wait
    found = audit(lab)
    assert (found["effects"], found["damage"], found["holds"]) == (5, 0, True)
    assert user(lab)["failures"] == 5


@pytest.mark.parametrize("strategy", ALL)
def test_the_right_password_neither_counts_nor_clears_failures(
    lab: LabProcess, strategy: str
) -> None:
    replies = [login(lab, strategy) for _ in range(4)]
    replies.append(login(lab, strategy, SEED_PASSWORD))
    replies += [login(lab, strategy) for _ in range(2)]
    assert statuses(replies) == [401, 401, 401, 401, 200, 401, 429]
    found = user(lab)
    assert (found["checks"], found["failed_checks"], found["failures"]) == (6, 5, 5)
    assert audit(lab)["damage"] == 0


@pytest.mark.parametrize("strategy", ALL)
def test_a_window_the_reset_left_open_keeps_counting(lab: LabProcess, strategy: str) -> None:
    reset(lab, failures=3, window_age_s=600)
    assert user(lab)["failures"] == 3
    assert statuses([login(lab, strategy) for _ in range(3)]) == [401, 401, 429]
    limited = login(lab, strategy)
    assert 0 < int(limited.headers["Retry-After"]) <= 300  # what is left of the 15 minutes
    assert audit(lab)["damage"] == 0


@pytest.mark.parametrize("strategy", ALL)
def test_a_window_that_is_over_opens_a_new_one(lab: LabProcess, strategy: str) -> None:
    reset(lab, failures=5, window_age_s=900)
    assert user(lab)["failures"] == 0  # the preset window is over
    assert statuses([login(lab, strategy) for _ in range(6)]) == [401] * 5 + [429]
    found = audit(lab)
    assert (found["effects"], found["damage"]) == (5, 0)


def test_the_audit_counts_from_the_failures_the_reset_left(lab: LabProcess) -> None:
    reset(lab, failures=4, window_age_s=60)
    answers = burst(lab, "vulnerable", [WRONG] * 10)
    checked = sum(status == 401 for status, _ in answers)
    assert checked > 1  # every guess read the preset 4 before any wrote its failure
    found = audit(lab)
    assert found["damage"] == checked - 1  # one slot was left in the window
    assert found["invariants"][0]["violations"] == [
        f"user 'ada': {checked - 1} of {checked} checks made over the limit ({checked} failed)"
    ]


@pytest.mark.parametrize("strategy", ALL)
def test_an_unknown_user_is_404_without_a_check(unchanged: LabProcess, strategy: str) -> None:
    reply = login(unchanged, strategy, username="grace")
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"] == "user_not_found"
    missing = httpx.get(f"{unchanged.base_url}/login/users/grace")
    assert missing.status_code == 404
    assert missing.json()["error"] == "user_not_found"


# --- bursts, on every backend ----------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def backend_lab(request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    yield from start_lab(request.param, 2)


@pytest.mark.parametrize("strategy", FIXES)
def test_a_burst_of_guesses_gets_five_checks(backend_lab: LabProcess, strategy: str) -> None:
    reset(backend_lab)
    answers = burst(backend_lab, strategy, [WRONG] * 20)
    assert Counter(status for status, _ in answers) == {401: 5, 429: 15}
    found = audit(backend_lab)
    assert (found["effects"], found["damage"], found["holds"]) == (5, 0, True)


def test_a_burst_of_guesses_gets_past_the_vulnerable_limit(backend_lab: LabProcess) -> None:
    reset(backend_lab)
    answers = burst(backend_lab, "vulnerable", [WRONG] * 20)
    checked = sum(status == 401 for status, _ in answers)
    assert checked > 5
    found = audit(backend_lab)
    assert found["effects"] == checked
    assert found["damage"] == checked - 5
    assert not found["holds"]


@pytest.mark.parametrize("strategy", FIXES)
def test_right_passwords_in_a_burst_give_their_slot_back(
    backend_lab: LabProcess, strategy: str
) -> None:
    reset(backend_lab)
    answers = burst(backend_lab, strategy, [WRONG, SEED_PASSWORD] * 6)
    counted = Counter(status for status, _ in answers)
    assert counted[401] == 5  # five failures fill the window, whatever order they came in
    assert counted[200] + counted[429] == 7
    found = audit(backend_lab)
    assert found["effects"] == counted[401] + counted[200]
    assert (found["damage"], found["holds"]) == (0, True)


def test_a_username_in_another_case_is_another_user_on_every_backend(
    backend_lab: LabProcess,
) -> None:
    reset(backend_lab)
    reply = login(backend_lab, "atomic", SEED_PASSWORD, username="ADA")
    assert reply.status_code == 404, reply.text
    assert audit(backend_lab)["effects"] == 0


# --- bad input: a clear 4xx, and nothing changes --------------------------------------------


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"username": "", "password": "x"}, "username", id="username-empty"),
        pytest.param({"username": "a" * 65, "password": "x"}, "username", id="username-65"),
        pytest.param({"username": "ada lovelace", "password": "x"}, "username", id="space"),
        pytest.param({"username": "adä", "password": "x"}, "username", id="username-non-ascii"),
        pytest.param({"username": 7, "password": "x"}, "username", id="username-number"),
        pytest.param({"password": "x"}, "username", id="username-missing"),
        pytest.param({"username": "ada", "password": ""}, "password", id="password-empty"),
        pytest.param({"username": "ada", "password": "p" * 129}, "password", id="password-129"),
        pytest.param({"username": "ada", "password": None}, "password", id="password-null"),
        pytest.param({"username": "ada"}, "password", id="password-missing"),
        pytest.param({"username": "ada", "password": "x", "otp": "1"}, "otp", id="unknown-field"),
    ],
)
def test_a_bad_login_body_is_422(
    unchanged: LabProcess, strategy: str, body: dict[str, Any], field: str
) -> None:
    reply = httpx.post(f"{unchanged.base_url}/login/{strategy}/login", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()
    assert error["error"] == "invalid_request"
    assert any(field in d["loc"] for d in error["details"])


def test_a_password_of_128_characters_is_checked(lab: LabProcess) -> None:
    reply = login(lab, "atomic", "p" * 128)
    assert reply.status_code == 401, reply.text
    assert audit(lab)["effects"] == 1


def test_an_unknown_strategy_is_404_naming_the_valid_ones(unchanged: LabProcess) -> None:
    reply = login(unchanged, "captcha")
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"] == "unknown_strategy"
    assert reply.json()["valid"] == ALL


@pytest.mark.parametrize(
    "fields",
    [
        {"failures": 6},
        {"failures": -1},
        {"failures": "1"},
        {"window_age_s": 86_401},
        {"window_age_s": 1.5},
        {"password": "new"},
    ],
    ids=[
        "failures-6",
        "failures-negative",
        "failures-string",
        "age-over-a-day",
        "age-float",
        "unknown-field",
    ],
)
def test_a_bad_reset_is_422(unchanged: LabProcess, fields: dict[str, Any]) -> None:
    reply = httpx.post(f"{unchanged.base_url}/lab/reset", json={"scenario": "login", **fields})
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"


@pytest.mark.parametrize("username", ["a" * 65, "ada%20lovelace"], ids=["65", "space"])
def test_a_bad_username_to_look_up_is_422(unchanged: LabProcess, username: str) -> None:
    reply = httpx.get(f"{unchanged.base_url}/login/users/{username}")
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid_request"
