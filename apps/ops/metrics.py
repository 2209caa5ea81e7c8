"""Hooks run before /metrics is exported: apps register functions that refresh sampled gauges."""

from __future__ import annotations

from collections.abc import Callable

_scrape_hooks: list[Callable[[], None]] = []


def scrape_hook_register(hook: Callable[[], None]) -> None:
    if hook not in _scrape_hooks:
        _scrape_hooks.append(hook)


def scrape_hooks_run() -> None:
    for hook in _scrape_hooks:
        hook()
