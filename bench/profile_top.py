"""The heaviest frames of py-spy's collapsed stacks (`py-spy record --format raw`, or bench-progress
BENCH_PROFILE=<folder>): inclusive and own share of the samples, per function.

    python bench/profile_top.py var/profile/b.*.txt [--top 40] [--grep apps.]

Idle threads (a gthread worker waiting in select/poll/accept) are left out, so the shares are of the time
spent working.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# ruff: noqa: T201 - prints its table

IDLE = re.compile(r"\b(select|poll|epoll_wait|accept|wait|_wait_for_tstate_lock|sleep)\b \(")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--grep", default="", help="only functions whose frame contains this")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in args.files:
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            frames = stack.split(";")
            if IDLE.search(frames[-1]):
                continue
            count = int(count_text)
            total += count
            own[frames[-1]] += count
            for frame in set(frames[1:]):  # the first is the process/thread label
                inclusive[frame] += count
    if not total:
        print("no busy samples")
        return 1
    print(f"{total} busy samples")
    for title, counter in (("inclusive", inclusive), ("own", own)):
        print(f"--- {title}")
        rows = [(frame, n) for frame, n in counter.most_common() if args.grep in frame][: args.top]
        for frame, n in rows:
            print(f"{100 * n / total:6.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
