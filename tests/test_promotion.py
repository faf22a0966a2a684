"""Promotion rules of protected pointers: refused by the core, the CLI and `mreg validate --base` alike.

Showcase: iris v1, v2, v3 trained (accuracy 0.9, 0.96, 0.97), prod -> v2,
staging -> v3; every commit at FIXED_DATE.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import PromotionRuleError, Registry, validate_registry
from tests.conftest import git
from tests.processes import MREG
from tests.showcase import Showcase
from tool.cli import cli

PROD = "pointers/iris/prod.yaml"
LATER = "2026-11-24T07:00:00Z"  # two hours after the showcase's commits

RULES = """protected_pointers: [prod]
promotion:
  prod:
    from: staging
    require:
      metrics: ["accuracy >= 0.95"]
      labels: {validated: "true"}
      min_time: 1h
    approvers: ["Lead <lead@example.com>", "@ml-leads"]
"""


def protect(root: Path, rules: str = RULES) -> Registry:
    settings = root / "registry.yaml"
    settings.write_text(settings.read_text() + rules)
    git(root, "commit", "-qam", "promotion rules for prod")
    return Registry(root)


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD")


def refused(reg: Registry, rule: str, call: object) -> PromotionRuleError:
    before = head(reg.root)
    with pytest.raises(PromotionRuleError) as info:
        call()  # type: ignore[operator]
    assert info.value.rule == rule, str(info.value)
    assert str(info.value).startswith(f"rule {rule}: ")
    assert head(reg.root) == before
    assert git(reg.root, "status", "--porcelain") == ""
    return info.value


def test_each_rule_refuses_a_write_until_it_holds(
    showcase: Showcase, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = protect(showcase.root)
    lead = ["Lead <lead@example.com>"]
    error = refused(
        reg, "promotion.prod.from", lambda: reg.point("iris:prod", "v1", approved_by=lead)
    )
    assert "iris:v1 was never its target" in str(error)
    assert error.to_dict()["detail"]["info"] == {"rule": "promotion.prod.from"}
    refused(reg, "promotion.prod.require.min_time", lambda: reg.point("iris:prod", "v3"))
    monkeypatch.setenv("GIT_AUTHOR_DATE", LATER)
    error = refused(reg, "promotion.prod.require.labels", lambda: reg.point("iris:prod", "v3"))
    assert "validated=true" in str(error)
    reg.update_version("iris:v3", metadata={"validated": "true"})
    error = refused(reg, "promotion.prod.approvers", lambda: reg.point("iris:prod", "v3"))
    assert "Test User <test@example.com>" in str(error)
    done = reg.point("iris:prod", "v3", approved_by=lead)
    assert done.commit is not None
    assert "Approved-by: Lead <lead@example.com>" in git(showcase.root, "log", "-1", "--format=%B")
    assert validate_registry(reg, base="HEAD~1", rev="HEAD").errors == []


def test_metric_conditions_reuse_the_gate(showcase: Showcase) -> None:
    reg = protect(
        showcase.root,
        'protected_pointers: [prod]\npromotion:\n  prod:\n    require:\n      metrics: "accuracy >= 0.98"\n',
    )
    error = refused(reg, "promotion.prod.require.metrics", lambda: reg.point("iris:prod", "v3"))
    assert "accuracy >= 0.98 (accuracy=0.97)" in str(error)


def test_a_canary_arm_is_checked_and_promoting_it_needs_only_approval(
    showcase: Showcase, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = protect(showcase.root)
    monkeypatch.setenv("GIT_AUTHOR_DATE", LATER)
    refused(
        reg,
        "promotion.prod.require.labels",
        lambda: reg.point("iris:prod", "v3", weight=10, approved_by=["lead@example.com"]),
    )
    reg.update_version("iris:v3", metadata={"validated": "true"})
    reg.point("iris:prod", "v3", weight=10, approved_by=["lead@example.com"])
    assert validate_registry(reg, base="HEAD~1", rev="HEAD").errors == []
    refused(reg, "promotion.prod.approvers", lambda: reg.promote("iris:prod"))
    reg.promote("iris:prod", approved_by=["@ml-leads"])
    assert validate_registry(reg, base="HEAD~1", rev="HEAD").errors == []
    reg.rollback("iris:prod", approved_by=["@ml-leads"])
    assert validate_registry(reg, base="HEAD~1", rev="HEAD").errors == []


def test_register_with_point_obeys_the_rules(showcase: Showcase, tmp_path: Path) -> None:
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    reg = protect(showcase.root)
    x, y = load_iris(return_X_y=True)
    path = tmp_path / "v4.skops"
    skops.io.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    error = refused(reg, "promotion.prod.from", lambda: reg.register("iris", path, point=["prod"]))
    assert "iris:v4 was never its target" in str(error)


def run(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--repo", str(root), *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_refuses_with_the_rule_name_and_has_no_force(showcase: Showcase) -> None:
    root = showcase.root
    protect(root)
    before = head(root)
    proc = subprocess.run(
        [*MREG, "--repo", str(root), "point", "iris:prod", "v1"], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: rule promotion.prod.from: iris:prod takes versions only")
    assert len(proc.stderr.strip().splitlines()) == 1
    code, _, err = run(root, "point", "iris:prod", "v3", "--force")
    assert code == 1 and err.startswith("error: No such option '--force'")
    for command in ("promote", "rollback"):
        code, _, err = run(root, command, "iris:prod", "--force")
        assert code == 1 and err.startswith("error: No such option '--force'")
    assert head(root) == before


def findings(root: Path, *args: str) -> list[dict[str, object]]:
    _, out, _ = run(root, "validate", "--format", "json", *args)
    return json.loads(out)  # type: ignore[no-any-return]


def test_validate_base_reports_each_broken_rule_by_name(
    showcase: Showcase, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = showcase.root
    protect(root)
    (root / PROD).write_text("target: v1\n")
    git(root, "commit", "-qam", "prod to v1 by hand")
    found = [f for f in findings(root, "--base", "HEAD~1") if f["code"] == "promotion-rule"]
    rules = sorted(str(f["message"]).split(":")[0] for f in found)
    assert rules == [
        "rule promotion.prod.approvers",
        "rule promotion.prod.from",
        "rule promotion.prod.require.labels",
        "rule promotion.prod.require.metrics",
    ]
    assert all(f["file"] == PROD and f["line"] == 1 for f in found)

    # A pull request that follows the rules: on staging for 2h, labelled, approved by trailer.
    git(root, "reset", "-q", "--hard", "HEAD~1")
    monkeypatch.setenv("GIT_AUTHOR_DATE", LATER)
    Registry(root).update_version("iris:v3", metadata={"validated": "true"})
    (root / PROD).write_text("target: v3\n")
    git(root, "commit", "-qam", "prod to v3\n\nApproved-by: Lead <lead@example.com>")
    assert findings(root, "--base", "HEAD~2") == []
    # The same change uncommitted, by someone who is not an approver, is refused in pre-commit.
    git(root, "reset", "-q", "--soft", "HEAD~1")
    found = findings(root, "--base", "HEAD")
    assert [f["message"] for f in found if f["code"] == "promotion-rule"] == [
        "rule promotion.prod.approvers: iris:prod is protected: this change by Test User"
        " <test@example.com> needs an approver (Lead <lead@example.com>, @ml-leads)"
        " as author or Approved-by: trailer"
    ]


def test_rules_only_for_protected_pointers(showcase: Showcase) -> None:
    root = showcase.root
    settings = root / "registry.yaml"
    settings.write_text(settings.read_text() + "promotion:\n  prod:\n    approvers: [a@b.c]\n")
    # (With registry.yaml unreadable its defaults apply, so the showcase's joblib version is also
    # an untrusted-format finding: only registry.yaml's own findings are this rule's.)
    found = [f for f in findings(root) if f["file"] == "registry.yaml"]
    assert [f["code"] for f in found] == ["schema"]
    assert "not in protected_pointers" in str(found[0]["message"])


def test_codeowners_snippet_from_approvers(showcase: Showcase) -> None:
    root = showcase.root
    rules = RULES.replace("protected_pointers: [prod]", "protected_pointers: [prod, canary]")
    protect(root, rules + "  canary:\n    approvers: [ops@example.com]\n")
    code, out, _ = run(root, "codeowners")
    assert code == 0
    assert out.splitlines() == [
        "# mreg: protected pointers and their approvers (mreg codeowners)",
        "/pointers/*/canary.yaml ops@example.com",
        "/pointers/*/prod.yaml lead@example.com @ml-leads",
        "/registry.yaml ops@example.com lead@example.com @ml-leads",
    ]


def test_codeowners_without_approvers_is_an_error(showcase: Showcase) -> None:
    code, _, err = run(showcase.root, "codeowners")
    assert code == 1 and err == "error: registry.yaml has no promotion rule with approvers\n"
