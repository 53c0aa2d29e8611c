"""What ``toctou matrix`` measured: per backend x workers x scenario x strategy, rounds of the
scenario's race recipe judged by the lab's own audit, compared with the catalogue's claim.

Saved as JSON (``MatrixResult.to_json``) and read back by ``toctou report``; the Markdown and
HTML renderers read nothing else.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from toctou.engine import RaceResult

__all__ = [
    "SCHEMA_VERSION",
    "CellVerdict",
    "LabRun",
    "MatrixCell",
    "MatrixResult",
    "MatrixRound",
    "Throughput",
]

SCHEMA_VERSION = 1
CellVerdict = Literal["safe", "racy", "errors"]
Holds = Literal["always", "one-worker", "never"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MatrixRound(_Model):
    """One round of a cell: reset, audit, race, audit."""

    index: int
    damage: int = Field(description="the audit's damage after the round, in the scenario's unit")
    holds: bool = Field(description="every invariant of the scenario held after the round")
    successes: int
    rejections: int = Field(description="4xx answers: refusals, contention, conflicts")
    errors: int = Field(description="5xx answers and requests that got no answer")
    retries: int = Field(description="extra transactions the lab ran for the successful answers")
    arrival_spread_ms: float | None = Field(
        description="last minus first arrival at the server (its Server-Timing stamps)"
    )
    violations: tuple[str, ...] = ()
    error: str | None = Field(default=None, description="why the round could not be judged")

    @property
    def judged(self) -> bool:
        return self.error is None


class Throughput(_Model):
    """A short load phase on one cell: the recipe's request, sent back to back by ``clients``."""

    clients: int
    seconds: float
    requests: int
    successes: int
    errors: int
    per_second: float = Field(description="answered requests per second")
    successes_per_second: float
    p50_ms: float
    p99_ms: float


class MatrixCell(_Model):
    scenario: str
    strategy: str
    backend: Literal["sqlite", "postgresql", "mariadb"]
    workers: int
    damage_unit: str
    claimed: Holds = Field(description="the catalogue's claim for this backend")
    claimed_safe: bool = Field(description="the claim, for this number of workers")
    needs: tuple[str, ...] = Field(default=(), description="what it needs besides the database")
    verdict: CellVerdict
    as_claimed: bool | None = Field(description="None when the cell could not be judged")
    worst_damage: int
    rounds_affected: int = Field(description="rounds after which the audit did not hold")
    window_ms: float = Field(default=0.0, description="the race window its requests asked for")
    technique: str = ""
    protocol: str = ""
    rounds: tuple[MatrixRound, ...] = ()
    sample: RaceResult | None = Field(
        default=None,
        description="the race of the worst round (the first when all were alike), for its "
        "timeline; credentials redacted",
    )
    state_before: dict[str, Any] | None = Field(
        default=None, description="the audit's state before the sample round"
    )
    state_after: dict[str, Any] | None = None
    throughput: Throughput | None = None
    error: str | None = Field(default=None, description="why the cell could not be judged")

    @property
    def surprise(self) -> bool:
        return self.as_claimed is False

    @property
    def key(self) -> str:
        """A stable identifier (an HTML anchor): scenario-strategy-backend-workers."""
        return f"{self.scenario}-{self.strategy}-{self.backend}-{self.workers}"


class LabRun(_Model):
    """One lab the matrix started: a backend with a number of workers."""

    backend: Literal["sqlite", "postgresql", "mariadb"]
    workers: int
    database: str = Field(description="the database URL, password removed")
    server_version: str = ""
    error: str | None = Field(default=None, description="why the lab did not start")


class MatrixResult(_Model):
    schema_version: int = SCHEMA_VERSION
    command: tuple[str, ...] = ()
    started_at: str = ""
    duration_s: float = 0.0
    versions: dict[str, str] = Field(
        default_factory=dict, description="python, toctou and every library and server involved"
    )
    rounds: int = 0
    window_ms: float | None = Field(
        default=None, description="--window-ms; None: each recipe's own (MatrixCell.window_ms)"
    )
    technique: str = "auto"
    requests: int | None = Field(default=None, description="--requests, else the recipes' own")
    redis: str | None = Field(default=None, description="the labs' Redis URL, password masked")
    labs: tuple[LabRun, ...] = ()
    cells: tuple[MatrixCell, ...] = ()
    skipped: tuple[str, ...] = Field(
        default=(), description="scenario/strategy cells not run, each with the reason"
    )

    @property
    def surprises(self) -> list[MatrixCell]:
        return [c for c in self.cells if c.surprise]

    @property
    def unjudged(self) -> list[MatrixCell]:
        return [c for c in self.cells if c.verdict == "errors"]

    @property
    def exit_code(self) -> int:
        """3 when a lab did not start or a cell could not be judged, else 1 when any cell
        surprised, else 0."""
        if any(lab.error for lab in self.labs) or self.unjudged or not self.cells:
            return 3
        return 1 if self.surprises else 0

    @property
    def summary(self) -> str:
        """The verdict as one sentence."""
        if not self.cells:
            failed = [
                f"{lab.backend} x{lab.workers}: {lab.error}" for lab in self.labs if lab.error
            ]
            reason = "; ".join(failed) or (
                "every selected cell was skipped (" + "; ".join(self.skipped) + ")"
                if self.skipped
                else "nothing matched the filters"
            )
            return f"No cell was run: {reason}."
        racy = sum(c.verdict == "racy" for c in self.cells)
        parts = [
            f"{len(self.cells)} cells: {len(self.cells) - racy - len(self.unjudged)} safe, "
            f"{racy} racy"
        ]
        if self.unjudged:
            parts.append(f"{len(self.unjudged)} could not be judged")
        stopped = sum(bool(lab.error) for lab in self.labs)
        if stopped:
            parts.append(f"{stopped} lab(s) did not start or stopped")
        if self.surprises:
            parts.append(f"{len(self.surprises)} SURPRISE(S) against the catalogue's claims")
        else:
            parts.append("every judged cell as the catalogue claims")
        return "; ".join(parts) + "."

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> MatrixResult:
        return cls.model_validate_json(text)

    @staticmethod
    def is_matrix(data: dict[str, Any]) -> bool:
        """Whether a saved JSON document is a matrix (else, an attack's ``RaceResult``)."""
        return "cells" in data and "schema_version" in data
