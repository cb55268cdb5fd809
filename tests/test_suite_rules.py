"""The suite's own rule for optional dependencies (tests/conftest.py): skip on a plain install, fail under make test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REQUIRE_TEST_DEPS, needs


def test_a_missing_dependency_skips_outside_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_TEST_DEPS, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no_such_module_4f2a is not installed"):
        needs("json", "no_such_module_4f2a")


def test_a_missing_dependency_fails_under_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_TEST_DEPS, "1")
    with pytest.raises(pytest.fail.Exception, match=f"no_such_parent_4f2a.sub is not installed; {REQUIRE_TEST_DEPS}=1"):
        needs("no_such_parent_4f2a.sub")
    needs("json", "huggingface_hub.utils")  # installed: nothing happens


def test_make_test_sets_the_variable() -> None:
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert f"{REQUIRE_TEST_DEPS}=1 " in recipe and "pytest" in recipe
