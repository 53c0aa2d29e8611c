"""``toctou matrix``: which fix holds on which database with how many workers, measured."""

from toctou.matrix.result import (
    SCHEMA_VERSION,
    CellVerdict,
    LabRun,
    MatrixCell,
    MatrixResult,
    MatrixRound,
    Throughput,
)

__all__ = [
    "SCHEMA_VERSION",
    "CellVerdict",
    "LabRun",
    "MatrixCell",
    "MatrixResult",
    "MatrixRound",
    "Throughput",
]
