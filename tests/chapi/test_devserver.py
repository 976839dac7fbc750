"""The development runner's choice of Celery worker processes."""

from __future__ import annotations

import pytest

from chapi import devserver


def test_one_worker_process_per_core_up_to_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKER_PROCESSES", raising=False)
    for cores, expected in ((None, 1), (1, 1), (2, 2), (16, 2)):
        monkeypatch.setattr(devserver.os, "cpu_count", lambda cores=cores: cores)
        assert devserver.worker_processes() == expected


def test_worker_processes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_PROCESSES", " 3 ")
    assert devserver.worker_processes() == 3
    for wrong in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv("WORKER_PROCESSES", wrong)
        with pytest.raises(ValueError, match="WORKER_PROCESSES must be a whole number"):
            devserver.worker_processes()
