"""The tracking client's retries (tenacity): a request whose answer was lost is not repeated
when the store says it took effect."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from codenas.tracking.client import RetryingClient


def test_a_lost_answer_is_recovered_instead_of_repeated(tmp_path: Path) -> None:
    warnings: list[str] = []
    client = RetryingClient(
        MlflowClient(f"sqlite:///{tmp_path / 'm.db'}"), "x", retry_for=10, warn=warnings.append
    )
    calls: list[str] = []

    def create() -> str:
        calls.append("create")
        raise ConnectionError("Connection reset by peer")  # it arrived; the answer did not

    def recover() -> str | None:
        calls.append("recover")
        return "run-1"

    assert client.retry("create_run", create, recover) == "run-1"
    assert calls == ["create", "recover"]
    assert len(warnings) == 1 and "retrying create_run in 1 s" in warnings[0]
    assert "connection reset" in warnings[0]


def test_a_failed_check_is_followed_by_a_new_attempt(tmp_path: Path) -> None:
    client = RetryingClient(
        MlflowClient(f"sqlite:///{tmp_path / 'm.db'}"), "x", retry_for=10, warn=lambda _: None
    )
    calls: list[str] = []

    def create() -> str:
        calls.append("create")
        if len(calls) == 1:
            raise TimeoutError("timed out")
        return "run-2"

    def recover() -> str | None:
        calls.append("recover")
        raise ConnectionError("Connection refused")

    assert client.retry("create_run", create, recover) == "run-2"
    assert calls == ["create", "recover", "create"]
