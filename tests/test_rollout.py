"""Weighted pointers, canary, promote and rollback, shadow config: the core over the showcase.

Showcase: iris v1, v2, v3 trained; prod -> v2, staging -> v3, champion -> prod.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from registry import (
    ConflictError,
    ManifestError,
    Registry,
    RegistryError,
    bucket,
    choose,
    validate_registry,
)
from tests.conftest import git
from tests.processes import MREG
from tests.showcase import Showcase

PROD = "pointers/iris/prod.yaml"


def commits(root: Path) -> int:
    return int(git(root, "rev-list", "--count", "HEAD"))


def codes(reg: Registry, **kwargs: object) -> list[tuple[str, str]]:
    report = validate_registry(reg, **kwargs)  # type: ignore[arg-type]
    return [(f.code, f.file) for f in report.errors]


def test_canary_promote_rollback_each_one_commit_that_validates(showcase: Showcase) -> None:
    reg = showcase.registry()
    root = showcase.root
    start = commits(root)

    canary = reg.point("iris:prod", "v3", weight=10)
    assert commits(root) == start + 1
    assert canary.subject == "iris: canary prod v3 10% (v2 -> v2 90%, v3 10%)"
    text = (root / PROD).read_text()
    assert "targets:" in text and "target: v2" in text and "weight: 90" in text
    assert "weight: 10" in text
    assert codes(reg, base="HEAD~1", rev="HEAD") == []
    res = reg.resolve("iris:prod")
    assert [(a.target, a.weight, a.version.version) for a in res.arms] == [
        ("v2", 90, 2),
        ("v3", 10, 3),
    ]
    assert res.version.version == 2  # the heaviest arm stands for the pointer
    # An alias of a weighted pointer has the same split.
    assert [a.version.version for a in reg.resolve("iris:champion").arms] == [2, 3]
    trailers = git(root, "log", "-1", "--format=%(trailers:only)")
    assert "Mreg-To-Targets: v2 90%, v3 10%" in trailers

    # A second canary step rescales the arms.
    reg.point("iris:prod", "v3", weight=50)
    assert [(a.target, a.weight) for a in reg.resolve("iris:prod").arms] == [
        ("v2", 50),
        ("v3", 50),
    ]

    promoted = reg.promote("iris:prod")
    assert promoted.subject == "iris: promote prod v3 (v2 50%, v3 50% -> v3)"
    assert (root / PROD).read_text() == "target: v3\n"
    assert reg.resolve("iris:prod").arms == ()
    assert codes(reg, base="HEAD~1", rev="HEAD") == []

    back = reg.rollback("iris:prod")
    assert commits(root) == start + 4
    assert back.subject == "iris: roll back prod (v3 -> v2 50%, v3 50%)"
    assert [a.weight for a in reg.resolve("iris:prod").arms] == [50, 50]
    assert codes(reg, base="HEAD~1", rev="HEAD") == []
    assert git(root, "status", "--porcelain") == ""


def test_pull_of_a_weighted_pointer_fetches_every_arm(showcase: Showcase) -> None:
    reg = showcase.registry()
    reg.point("iris:prod", "v3", weight=10)
    pulled = reg.pull(["iris:prod"])
    assert sorted(ref for ref, _, _ in pulled) == ["iris:v2", "iris:v3"]
    assert all(path.is_file() for _, path, _ in pulled)


def test_rollback_of_a_created_pointer_is_refused_and_changes_nothing(
    showcase: Showcase,
) -> None:
    reg = showcase.registry()
    reg.point("iris:beta", "v1")
    head = git(showcase.root, "rev-parse", "HEAD")
    with pytest.raises(ConflictError, match="no earlier state"):
        reg.rollback("iris:beta")
    assert git(showcase.root, "rev-parse", "HEAD") == head


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.point("iris:prod", "v3", weight=0), "not 1-99"),
        (lambda r: r.point("iris:prod", "v2", weight=10), "already sends all traffic"),
        (lambda r: r.point("iris:new", "v2", weight=10), "does not exist"),
        (lambda r: r.promote("iris:prod"), "nothing to promote"),
    ],
)
def test_bad_rollout_writes_are_refused(showcase: Showcase, call: object, message: str) -> None:
    reg = showcase.registry()
    head = git(showcase.root, "rev-parse", "HEAD")
    with pytest.raises(RegistryError, match=message):
        call(reg)  # type: ignore[operator]
    assert git(showcase.root, "rev-parse", "HEAD") == head


def test_choose_is_sticky_per_key_and_follows_the_weights(showcase: Showcase) -> None:
    reg = showcase.registry()
    reg.point("iris:prod", "v3", weight=10)
    res = reg.resolve("iris:prod")
    keys = [f"user-{i}" for i in range(2000)]
    first = {k: res.choose(k).version.version for k in keys}
    assert all(res.choose(k).version.version == first[k] for k in keys[:200])
    share = Counter(first.values())[3] / len(keys)
    assert 0.07 < share < 0.13
    # The bucket is sha256 of the key mod 100 against the cumulative weights.
    assert all((bucket(k) >= 90) == (first[k] == 3) for k in keys)
    rng = random.Random(7)
    drawn = Counter(choose(res.arms, None, rng).version.version for _ in range(2000))
    assert 0.07 < drawn[3] / 2000 < 0.13
    # A plain pointer chooses itself.
    plain = reg.resolve("iris:staging")
    assert plain.choose("anyone") is plain


BAD_POINTERS = {
    "weights do not sum to 100": (
        "targets:\n- target: v2\n  weight: 80\n- target: v3\n  weight: 10\n",
        "targets: Value error, the weights sum to 90, not 100",
    ),
    "zero weight": ("targets:\n- target: v2\n  weight: 100\n- target: v3\n  weight: 0\n", ""),
    "fractional weight": (
        "targets:\n- target: v2\n  weight: 89.5\n- target: v3\n  weight: 10.5\n",
        "integer",
    ),
    "both forms": ("target: v2\ntargets:\n- target: v2\n  weight: 100\n", "exactly one"),
    "same target twice": (
        "targets:\n- target: v2\n  weight: 50\n- target: v2\n  weight: 50\n",
        "named twice",
    ),
    "shadow sample above 1": ("target: v2\nshadow: v3\nshadow_sample: 1.5\n", "shadow_sample"),
}


@pytest.mark.parametrize("case", sorted(BAD_POINTERS))
def test_bad_weighted_pointer_files_are_schema_findings(showcase: Showcase, case: str) -> None:
    text, message = BAD_POINTERS[case]
    (showcase.root / PROD).write_text(text)
    reg = showcase.registry()
    report = validate_registry(reg)
    found = [f for f in report.errors if f.file == PROD]
    assert [f.code for f in found] == ["schema"], report.findings
    assert message in found[0].message
    with pytest.raises(ManifestError):
        reg.resolve("iris:prod")


def test_arms_and_shadows_must_end_at_one_trained_version(showcase: Showcase) -> None:
    root = showcase.root
    reg = showcase.registry()
    reg.register("churn", untrained=True)  # churn: v1 trained, v2 and v3 untrained
    (root / "pointers/churn").mkdir(parents=True, exist_ok=True)
    (root / "pointers/churn/prod.yaml").write_text(
        "targets:\n- target: v1\n  weight: 50\n- target: v2\n  weight: 50\n"
    )
    (root / "pointers/churn/ab.yaml").write_text(
        "targets:\n- target: v1\n  weight: 50\n- target: prod\n  weight: 50\n"
    )
    (root / "pointers/churn/shadowed.yaml").write_text("target: v1\nshadow: v9\n")
    (root / "pointers/churn/shadow-split.yaml").write_text("target: v1\nshadow: prod\n")
    (root / "pointers/churn/shadow-untrained.yaml").write_text("target: v1\nshadow: v2\n")
    found = {(f.code, f.file) for f in validate_registry(reg).errors}
    assert found == {
        ("pointer-untrained", "pointers/churn/prod.yaml"),
        ("pointer-split", "pointers/churn/ab.yaml"),
        ("dangling-pointer", "pointers/churn/shadowed.yaml"),
        ("pointer-split", "pointers/churn/shadow-split.yaml"),
        ("pointer-untrained", "pointers/churn/shadow-untrained.yaml"),
    }
    message = next(f.message for f in validate_registry(reg).errors if "shadowed" in f.file)
    assert message == "churn:shadowed shadows v9, which does not exist"


def test_shadow_config_is_resolved_without_breaking_the_primary(showcase: Showcase) -> None:
    root = showcase.root
    (root / PROD).write_text("target: v2\nshadow: v3\nshadow_sample: 0.2\n")
    reg = showcase.registry()
    assert validate_registry(reg).errors == []
    res = reg.resolve("iris:prod")
    assert res.version.version == 2
    assert res.shadow is not None
    assert (res.shadow.target, res.shadow.sample, res.shadow.version.version) == ("v3", 0.2, 3)  # type: ignore[union-attr]
    assert res.to_dict()["shadow"]["version"] == 3
    # About a fifth of the calls also go to the shadow; per key, always the same answer.
    keys = [f"user-{i}" for i in range(2000)]
    taken = [k for k in keys if res.shadow.takes(k)]
    assert 0.16 < len(taken) / len(keys) < 0.24
    assert all(res.shadow.takes(k) for k in taken[:100])
    rng = random.Random(3)
    assert 0.16 < sum(res.shadow.takes(None, rng) for _ in keys) / len(keys) < 0.24
    # A broken shadow is reported, and the primary still resolves.
    (root / PROD).write_text("target: v2\nshadow: v9\n")
    res = showcase.registry().resolve("iris:prod")
    assert res.version.version == 2 and res.shadow is not None and res.shadow.version is None
    assert "v9" in str(res.shadow.error)
    assert not res.shadow.takes("anyone")  # a broken shadow gets no calls
    # Moving the pointer keeps its shadow.
    (root / PROD).write_text("target: v2\nshadow: v3\n")
    git(root, "commit", "-qam", "shadow")
    reg = showcase.registry()
    reg.point("iris:prod", "v1")
    assert (root / PROD).read_text() == "target: v1\nshadow: v3\n"


def test_protected_pointer_schema_applies_to_every_arm(showcase: Showcase, tmp_path: Path) -> None:
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = showcase.root
    settings = root / "registry.yaml"
    settings.write_text(settings.read_text() + "protected_pointers: [prod]\n")
    git(root, "commit", "-qam", "protect prod")
    x, y = load_iris(return_X_y=True)
    path = tmp_path / "v4.skops"
    skops.io.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    reg = showcase.registry()
    reg.register("iris", path, input_info={"features": ["a", "b", "c", "d"]})
    reg.point("iris:prod", "v4", weight=10)
    report = validate_registry(reg, base="HEAD~1", rev="HEAD")
    assert [(f.code, f.file) for f in report.errors] == [("protected-pointer-schema", PROD)]
    assert "v2 to v4, whose input_info differs in features" in report.errors[0].message


def mreg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MREG, "--repo", str(root), *args], capture_output=True, text=True)


def test_cli_canary_resolve_diff_promote_rollback(showcase: Showcase) -> None:
    root = showcase.root
    # Warm the parse cache: the fast path of resolve must not answer a split on its own.
    assert mreg(root, "resolve", "iris:prod").stdout.startswith("iris:v2 ")
    out = mreg(root, "point", "iris:prod", "v3", "--weight", "10")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("iris:prod -> v2 90%, v3 10%: ")
    for _ in range(2):  # cold, then warm cache: the same answer
        text = mreg(root, "resolve", "iris:prod").stdout.splitlines()
        assert text[0] == "iris:prod  split: v2 90%, v3 10%"
        assert text[1].split() == [
            "90%",
            "iris:v2",
            showcase.ids["iris:v2"],
            *["iris:prod", "->", "iris:v2"],
        ]
        assert text[2].split()[:3] == ["10%", "iris:v3", showcase.ids["iris:v3"]]
    data = json.loads(mreg(root, "resolve", "iris:prod", "--json").stdout)
    assert (data["version"], data["id"]) == (2, showcase.ids["iris:v2"])
    assert [(a["target"], a["weight"], a["version"]) for a in data["arms"]] == [
        ("v2", 90, 2),
        ("v3", 10, 3),
    ]
    assert mreg(root, "validate", "--base", "HEAD~1", "--rev", "HEAD").returncode == 0
    diff = mreg(root, "diff", "HEAD~1", "HEAD").stdout
    assert "pointer iris:prod: moved v2 -> v2 90%, v3 10%" in diff
    change = json.loads(mreg(root, "diff", "HEAD~1", "HEAD", "--json").stdout)["pointers"]
    assert change == [
        {
            "model": "iris",
            "tag": "prod",
            "ref": "iris:prod",
            "change": "moved",
            "old_target": "v2",
            "new_target": "v2",
            "old_version": 2,
            "new_version": 2,
            "old_targets": [{"target": "v2", "weight": 100, "version": 2}],
            "new_targets": [
                {"target": "v2", "weight": 90, "version": 2},
                {"target": "v3", "weight": 10, "version": 3},
            ],
        }
    ]
    out = mreg(root, "promote", "iris:prod")
    assert out.returncode == 0 and out.stdout.startswith("iris:prod -> v3: "), out.stderr
    assert mreg(root, "resolve", "iris:prod").stdout.startswith("iris:v3 ")
    assert mreg(root, "validate", "--base", "HEAD~1", "--rev", "HEAD").returncode == 0
    out = mreg(root, "rollback", "iris:prod")
    assert out.returncode == 0 and out.stdout.startswith("iris:prod -> v2 90%, v3 10%: ")
    assert mreg(root, "validate", "--base", "HEAD~1", "--rev", "HEAD").returncode == 0
    history = mreg(root, "pointer", "history", "iris:prod").stdout.splitlines()
    assert "v3" in history[1] and "v2 90%, v3 10%" in history[1]
    bad = mreg(root, "point", "iris:prod", "v3", "--weight", "100")
    assert (bad.returncode, bad.stderr) == (
        1,
        "error: weight 100 is not 1-99 (point without a weight to send all traffic)\n",
    )
