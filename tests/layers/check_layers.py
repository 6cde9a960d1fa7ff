#!/usr/bin/env python3
"""Fails when a file under src/ includes a header from a higher layer (docs/architecture.md).

Usage: check_layers.py [SRC_DIR]   (default: the src/ next to this script's tests/ folder)
Prints one line per offending include and exits 1, or prints a summary and exits 0.
"""
import os
import re
import sys

# Bottom to top; a folder may include its own layer and every layer below it.
LAYERS = [
    ("core",),
    ("runtime",),
    ("metrics",),
    ("config", "jsonschema"),
    ("net",),
    ("trace",),
    ("http",),
    ("template", "graphql"),
    ("compress", "cache"),
    ("lua",),
    ("redis",),
    ("lb", "upstream"),
    ("proxy",),
    ("l4",),
    ("policies",),
    ("explain",),
    ("admin", "demo"),
    ("server",),
    ("cli",),
]
RANK = {folder: i for i, group in enumerate(LAYERS) for folder in group}
MAIN_RANK = len(LAYERS)  # src/main.cc sits above everything
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def rank_of(rel_path):
    """Layer of a path relative to src/ ('proxy/session.h'), or None when unknown."""
    if rel_path == "main.cc":
        return MAIN_RANK
    return RANK.get(rel_path.split("/", 1)[0])


def check(src_dir):
    problems, files = [], 0
    for root, _, names in os.walk(src_dir):
        for name in sorted(names):
            if not name.endswith((".h", ".cc")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src_dir)
            own = rank_of(rel)
            if own is None:
                problems.append(f"{rel}: folder '{rel.split('/')[0]}' has no layer (add it to "
                                f"tests/layers/check_layers.py and docs/architecture.md)")
                continue
            files += 1
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m or "/" not in m.group(1):
                        continue
                    target = rank_of(m.group(1))
                    if target is None:
                        problems.append(f"src/{rel}:{lineno}: includes \"{m.group(1)}\" from a "
                                        f"folder with no layer")
                    elif target > own:
                        problems.append(f"src/{rel}:{lineno}: \"{m.group(1)}\" is in a higher "
                                        f"layer ({m.group(1).split('/')[0]}) than "
                                        f"{rel.split('/')[0]}")
    return problems, files


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "src")
    problems, files = check(os.path.normpath(src))
    for p in problems:
        print(p)
    if problems:
        print(f"layer check: {len(problems)} include(s) point up", file=sys.stderr)
        return 1
    print(f"layer check: {files} files, no include points up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
