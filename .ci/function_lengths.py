#!/usr/bin/env python3
"""Fails when a non-test Rust function is longer than the limit.

Usage: function_lengths.py LIMIT DIR... Counts the lines from a `fn` line to its closing
brace; functions inside `#[cfg(test)]` modules and files under `tests/` or `benches/` are not
counted. Prints each function over the limit as `file:line name (N lines)`.
"""
import os
import re
import sys

FN_RE = re.compile(r'^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)')


def code(line):
    """A line without its comment and string contents (so braces in them don't count)."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return re.sub(r'//.*', '', line)


def long_functions(path, limit):
    lines = open(path, encoding='utf-8').read().split('\n')
    i = 0
    while i < len(lines):
        if re.match(r'\s*#\[cfg\(test\)\]', lines[i]):
            # Skip the test item (module or function) that follows.
            i = skip_item(lines, i + 1)
            continue
        m = FN_RE.match(lines[i])
        if not m:
            i += 1
            continue
        end = skip_item(lines, i)
        if end - i > limit:
            yield i + 1, m.group(1), end - i
        i += 1


def skip_item(lines, start):
    """The index after the item starting at `start` (its braces balanced, or its `;`)."""
    depth, opened = 0, False
    for j in range(start, len(lines)):
        text = code(lines[j])
        for ch in text:
            if ch == '{':
                depth += 1
                opened = True
            elif ch == '}':
                depth -= 1
        if opened and depth <= 0:
            return j + 1
        if not opened and text.rstrip().endswith(';'):
            return j + 1
    return len(lines)


def main(limit, roots):
    found = False
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in ('target', 'tests', 'benches', 'node_modules')]
            for name in sorted(files):
                if not name.endswith('.rs') or name.endswith('_tests.rs') or name == 'tests.rs':
                    continue
                path = os.path.join(dirpath, name)
                for line, fn, length in long_functions(path, limit):
                    found = True
                    print(f'{path}:{line} {fn} ({length} lines, over {limit})')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main(int(sys.argv[1]), sys.argv[2:]))
