"""The stub upstream fixture of tests/deploy/kit.py, for every test here."""

from tests.deploy.kit import upstream  # noqa: F401
