"""Promotion rules: how a protected pointer may move (registry.yaml `promotion.<tag>`).

```yaml
protected_pointers: [prod]
promotion:
  prod:
    from: staging                 # the version was the target of iris:staging first (history)
    require:
      metrics: ["accuracy >= 0.9"]  # on train_info.metrics, as a training gate
      labels: {validated: "true"}   # entries of the version's metadata
      min_time: 24h                 # time on the `from` pointer(s) before this move
    approvers: [alice@example.com, "@ml-leads"]
```

`from`, `require` apply to every version the move brings to the pointer for
the first time (a new target, or a new arm of a split): an arm already there,
or a version the pointer resolved to before (a rollback), is not checked
again. `approvers` applies to every change of the pointer's file: the
change's commit author (its email) or one of its `Approved-by:` trailers
(`Name <email>`, an email or an `@handle`) must be one of them. A trailer
is a claim anyone can write; the host's review is what makes it true, so
`codeowners` gives the CODEOWNERS lines that make those people required
reviewers. Each broken rule is a `Breach` named `promotion.<tag>.<rule>`
(from, require.metrics, require.labels, require.min_time, approvers): the
writes raise it as a `PromotionRuleError`, `mreg validate --base` reports it
as a `promotion-rule` finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from registry import plumbing
from registry.base import RegistryBase
from registry.errors import PromotionRuleError, RegistryError
from registry.history import pointer_states
from registry.layout import Resolution
from registry.manifests import (
    PromotionRule,
    RegistrySettings,
    VersionManifest,
    duration_seconds,
)
from registry.train_stage import check_gate

_EMAIL_RE = re.compile(r"<([^>]+)>")


@dataclass(frozen=True)
class Approval:
    """Who made one change of a pointer file: the commit author and its `Approved-by:` trailers."""

    author: str
    """`Name <email>`."""
    approved_by: tuple[str, ...] = ()
    commit: str | None = None
    """None: a change not committed yet (a write being made, the work tree)."""


@dataclass(frozen=True)
class Breach:
    """One broken rule: `rule` is its name (`promotion.prod.from`), `message` says what to do."""

    rule: str
    message: str


def _identity(text: str) -> str:
    """The part of an author or trailer that approvers name: the email, or the @handle."""
    m = _EMAIL_RE.search(text)
    return (m.group(1) if m else text).strip().lower()


def approved(approvers: Iterable[str], approval: Approval) -> bool:
    """Whether the change's author or one of its Approved-by trailers is an approver."""
    wanted = {_identity(a) for a in approvers}
    who = [approval.author, *approval.approved_by]
    return any(_identity(w) in wanted for w in who)


def arm_versions(res: Resolution | None) -> dict[str, VersionManifest]:
    """The versions a resolution serves, by id: every arm, or the one version."""
    if res is None:
        return {}
    if res.arms:
        return {arm.version.id: arm.version for arm in res.arms}
    return {res.version.id: res.version}


def check_move(
    registry: RegistryBase,
    settings: RegistrySettings,
    model: str,
    tag: str,
    old: Resolution | None,
    new: Resolution | None,
    *,
    history_rev: str | None,
    when: datetime,
    approvals: Sequence[Approval],
    base_rev: str | None = None,
) -> list[Breach]:
    """The rules a change of pointer `model:tag` from `old` to `new` breaks (none: allowed).

    `history_rev` is where the `from` pointers' history is read (None: HEAD);
    `base_rev` where the pointer's own is (the state before the change; None:
    HEAD); `when` is the time of the move; `approvals` the changes that made it.
    """
    rule = settings.promotion.get(tag)
    if rule is None or tag not in settings.protected_pointers or new is None:
        return []
    out: list[Breach] = []
    prefix = f"promotion.{tag}"
    before = set(arm_versions(old))
    newcomers = [v for vid, v in arm_versions(new).items() if vid not in before]
    if newcomers:
        held = _held(registry, f"{model}:{tag}", base_rev)
        for version in newcomers:
            if version.version not in held:
                out += _version_rules(
                    registry, rule, prefix, model, tag, version, history_rev, when
                )
    if rule.approvers:
        for a in approvals:
            if not approved(rule.approvers, a):
                where = f"commit {a.commit[:10]}" if a.commit else "this change"
                out.append(
                    Breach(
                        f"{prefix}.approvers",
                        f"{model}:{tag} is protected: {where} by {a.author} needs an approver"
                        f" ({', '.join(rule.approvers)}) as author or Approved-by: trailer",
                    )
                )
    return out


def _held(registry: RegistryBase, ref: str, rev: str | None) -> set[int]:
    """The versions the pointer itself resolved to before (a rollback returns to one of them)."""
    try:
        return {s.version for s in pointer_states(registry, ref, rev=rev) if s.version is not None}
    except RegistryError:
        return set()


def _version_rules(
    registry: RegistryBase,
    rule: PromotionRule,
    prefix: str,
    model: str,
    tag: str,
    version: VersionManifest,
    history_rev: str | None,
    when: datetime,
) -> list[Breach]:
    out: list[Breach] = []
    name = f"{model}:v{version.version}"
    if rule.from_:
        seen, seconds = _time_on(registry, model, rule.from_, version.version, history_rev, when)
        sources = " or ".join(f"{model}:{s}" for s in rule.from_)
        if not seen:
            out.append(
                Breach(
                    f"{prefix}.from",
                    f"{model}:{tag} takes versions only from {sources}:"
                    f" {name} was never its target (move {sources} to it first)",
                )
            )
        elif rule.require.min_time is not None:
            need = duration_seconds(rule.require.min_time)
            if seconds < need:
                out.append(
                    Breach(
                        f"{prefix}.require.min_time",
                        f"{name} was on {sources} for {_human(seconds)},"
                        f" less than the {rule.require.min_time} {model}:{tag} requires",
                    )
                )
    if rule.require.metrics:
        metrics = version.train_info.get("metrics")
        failed = check_gate(rule.require.metrics, metrics if isinstance(metrics, dict) else {})
        if failed:
            out.append(
                Breach(
                    f"{prefix}.require.metrics",
                    f"{name} fails the metrics {model}:{tag} requires: {', '.join(failed)}",
                )
            )
    missing = [
        f"{k}={want}"
        for k, want in rule.require.labels.items()
        if str(version.metadata.get(k)).lower() != want.lower()
    ]
    if missing:
        out.append(
            Breach(
                f"{prefix}.require.labels",
                f"{name} lacks the labels {model}:{tag} requires: {', '.join(missing)}"
                f" (mreg version update {name} --metadata {missing[0]})",
            )
        )
    return out


def _time_on(
    registry: RegistryBase,
    model: str,
    sources: Sequence[str],
    n: int,
    rev: str | None,
    when: datetime,
) -> tuple[bool, float]:
    """Whether version n was ever the target of one of `sources`, and for how long before `when`."""
    seen, total = False, 0.0
    for source in sources:
        try:
            states = list(reversed(pointer_states(registry, f"{model}:{source}", rev=rev)))
        except RegistryError:
            continue  # no such pointer in history: it never held the version
        for i, state in enumerate(states):
            if state.version != n:
                continue
            seen = True
            end = states[i + 1].date if i + 1 < len(states) else when
            total += max(0.0, (min(end, when) - state.date).total_seconds())
    return seen, total


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{int(seconds)}s"


def refuse_breaches(ref: str, breaches: Sequence[Breach]) -> None:
    """Raise the first breach as a PromotionRuleError naming its rule (what every write does)."""
    if breaches:
        first = breaches[0]
        raise PromotionRuleError(f"rule {first.rule}: {first.message}", rule=first.rule, ref=ref)


def change_approvals(
    registry: RegistryBase, base: str, rev: str | None, path: str
) -> tuple[list[Approval], datetime]:
    """The changes of `path` from `base` to `rev` (None: HEAD and the work tree), and when the last was.

    Each commit in base..rev that touched the file is one approval to check;
    an uncommitted change of the work tree counts as one by the configured
    git identity, at the time a commit would get now.
    """
    root = registry.root
    end = rev or "HEAD"
    fmt = "%H%x1f%an <%ae>%x1f%at%x1f%(trailers:key=Approved-by,valueonly,separator=%x1d)%x1e"
    out = plumbing.git(root, "log", f"--format={fmt}", f"{base}..{end}", "--", path)
    approvals: list[Approval] = []
    last: datetime | None = None
    for record in out.stdout.decode().split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        sha, who, ts, trailers = (record.split("\x1f") + [""] * 4)[:4]
        by = tuple(t.strip() for t in trailers.split("\x1d") if t.strip())
        approvals.append(Approval(who, by, sha))
        stamp = datetime.fromtimestamp(int(ts), UTC)
        last = stamp if last is None or stamp > last else last
    if rev is None:
        diff = plumbing.git(root, "diff", "--quiet", "HEAD", "--", path, check=False)
        untracked = plumbing.git(root, "ls-files", "--others", "--", path).stdout.strip()
        if diff.returncode != 0 or untracked:
            who, now = plumbing.author(root)
            approvals.append(Approval(who))
            last = now
    if last is None:
        last = plumbing.author(root)[1]
    return approvals, last


def codeowners(settings: RegistrySettings) -> list[str]:
    """CODEOWNERS lines that make each protected pointer's approvers its required reviewers.

    One line per rule with approvers (every model's `pointers/*/<tag>.yaml`),
    and registry.yaml owned by all of them, since the rules live there.
    """
    lines = ["# mreg: protected pointers and their approvers (mreg codeowners)"]
    everyone: list[str] = []
    for tag in sorted(settings.promotion):
        rule = settings.promotion[tag]
        if not rule.approvers:
            continue
        lines.append(f"/pointers/*/{tag}.yaml {' '.join(_owner(a) for a in rule.approvers)}")
        everyone += [a for a in rule.approvers if _owner(a) not in map(_owner, everyone)]
    if everyone:
        lines.append(f"/registry.yaml {' '.join(_owner(a) for a in everyone)}")
    return lines


def _owner(approver: str) -> str:
    """A CODEOWNERS owner: an @handle or @org/team as written, or the email of `Name <email>`."""
    m = _EMAIL_RE.search(approver)
    return m.group(1) if m else approver.strip()
