"""The README documents every environment variable the code reads."""

from __future__ import annotations

import re

from tests.conftest import BASE_DIR

NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE", "PATH"}
READS = re.compile(
    r"""env_\w+\(\s*["']([A-Z][A-Z0-9_]+)|os\.environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]+)|\$\{([A-Z][A-Z0-9_]+)"""
)


def variables_read_by_the_code() -> set[str]:
    sources = [*BASE_DIR.glob("revenge/*.py"), *BASE_DIR.glob("apps/**/*.py"), *BASE_DIR.glob("deploy/**/*.py")]
    sources.append(BASE_DIR / "Procfile")
    found = set()
    for path in sources:
        for match in READS.finditer(path.read_text()):
            found.add(next(group for group in match.groups() if group))
    return found - NOT_SETTINGS


def test_every_environment_variable_is_in_the_readme_table():
    readme = (BASE_DIR / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE))

    read = variables_read_by_the_code()

    assert len(read) > 20  # the scan itself works
    assert read - documented == set(), "read by the code but missing from the README table"
    assert documented - read == set(), "in the README table but read nowhere"
