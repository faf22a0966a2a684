"""The registry's log: every commit that changed registry.yaml, a model or a pointer."""

from __future__ import annotations

from pathlib import Path

from registry import Registry
from tests.conftest import git


def test_the_log_holds_commits_that_change_only_registry_yaml(tmp_path: Path) -> None:
    reg = Registry.init(tmp_path / "reg")
    settings = reg.root / "registry.yaml"
    settings.write_text(settings.read_text() + "# owned by the ML platform team\n")
    git(reg.root, "commit", "-qam", "registry.yaml: name the owners")
    git(reg.root, "commit", "-q", "--allow-empty", "-m", "unrelated")
    entries = reg.log()
    assert [e.subject for e in entries] == ["registry.yaml: name the owners", "mreg: init registry"]
    assert [e.action for e in entries] == [None, "init"]
    assert reg.log("iris") == []
