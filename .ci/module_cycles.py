#!/usr/bin/env python3
"""Fails when two modules of one crate import each other, directly or through others.

Usage: module_cycles.py CRATE_ROOT_FILE... (each a lib.rs or main.rs). Modules are files;
an import is a `use` or a path (`crate::a::b`, `super::x`, `child::f`) that names an item
of another module. A name re-exported by a module (`pub use x::Y`) resolves to where it is
defined, so a facade that re-exports its children is not a cycle. Prints each cycle as its
modules and one import per edge, and exits 1 when there is one.
"""
import os
import re
import sys

MOD_RE = re.compile(r'^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;', re.M)
INLINE_MOD_RE = re.compile(r'^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*\{', re.M)
USE_RE = re.compile(r'^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);', re.M)
PATH_RE = re.compile(r'(?<![\w:])((?:crate|super|self)(?:::\w+)+)')


def strip(src):
    """Source without comments and string literals (so paths in docs don't count)."""
    src = re.sub(r'//[^\n]*', '', src)
    src = re.sub(r'/\*.*?\*/', '', src, flags=re.S)
    src = re.sub(r'r#+"(.*?)"#+', '""', src, flags=re.S)
    src = re.sub(r'"(\\.|[^"\\])*"', '""', src, flags=re.S)
    return src


def expand(tree):
    """`a::{b, c::{d}}` -> [[a, b], [a, c, d]]; `x as y` -> [x]."""
    tree = re.sub(r'\s+', '', tree)
    out = []

    def walk(prefix, t):
        if not t:
            return
        if t.startswith('{'):
            depth, start = 0, 1
            for i, ch in enumerate(t):
                if ch == '{':
                    depth += 1
                elif ch == '}':
                    depth -= 1
                    if depth == 0:
                        walk(prefix, t[start:i]) if start < i else None
                elif ch == ',' and depth == 1:
                    walk(prefix, t[start:i])
                    start = i + 1
            return
        i = t.find('::{')
        if i >= 0 and ',' not in t[:i]:
            walk(prefix + t[:i].split('::'), t[i + 2:])
            return
        for part in split_top(t):
            part = part.split(' as ')[0].split('as')[0] if False else re.sub(r'as\w+$', '', part)
            out.append(prefix + [s for s in part.split('::') if s])

    walk([], tree)
    return out


def split_top(t):
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(t):
        if ch == '{':
            depth += 1
        elif ch == '}':
            depth -= 1
        elif ch == ',' and depth == 0:
            parts.append(t[start:i])
            start = i + 1
    parts.append(t[start:])
    return [p for p in parts if p]


class Crate:
    def __init__(self, root_file):
        self.files = {}      # module path tuple -> file
        self.children = {}   # module -> set of child names
        self.src = {}
        self.load((), root_file, os.path.dirname(root_file))

    def load(self, module, path, child_dir):
        src = strip(open(path, encoding='utf-8').read())
        self.add(module, path, src)
        for name in MOD_RE.findall(self.src[module]):
            for cand in (os.path.join(child_dir, name + '.rs'), os.path.join(child_dir, name, 'mod.rs')):
                if os.path.exists(cand):
                    self.children[module].add(name)
                    self.load(module + (name,), cand, os.path.join(child_dir, name))
                    break

    def add(self, module, path, src):
        """Registers `module` with its text, each inline `mod x { ... }` as a child of its own."""
        self.files[module] = path
        self.children[module] = set()
        outer, pos = [], 0
        for m in INLINE_MOD_RE.finditer(src):
            if m.start() < pos:
                continue
            depth, i = 0, m.end() - 1
            while i < len(src):
                depth += {'{': 1, '}': -1}.get(src[i], 0)
                if depth == 0:
                    break
                i += 1
            outer.append(src[pos:m.start()])
            self.children[module].add(m.group(1))
            self.add(module + (m.group(1),), path, src[m.end():i])
            pos = i + 1
        outer.append(src[pos:])
        self.src[module] = ''.join(outer)

    def reexports(self, module):
        """name -> absolute path segments, for each `pub use` of `module`."""
        found = {}
        for m in re.finditer(r'^\s*pub(?:\([^)]*\))?\s+use\s+([^;]+);', self.src[module], re.M):
            for segs in expand(m.group(1)):
                if segs and segs[-1] != '*':
                    found[segs[-1]] = self.absolute(module, segs)
        return found

    def absolute(self, module, segs):
        """Segments of a path as written in `module`, made absolute (or None: not this crate)."""
        if not segs:
            return None
        head, rest = segs[0], segs[1:]
        if head == 'crate':
            return list(rest)
        if head == 'self':
            return list(module) + list(rest)
        if head == 'super':
            base = list(module)
            while segs and segs[0] == 'super':
                base = base[:-1]
                segs = segs[1:]
            return base + list(segs)
        if head in self.children.get(module, ()):
            return list(module) + list(segs)
        return None

    def resolve(self, segs, seen=None):
        """The module that defines the item `segs` (absolute) names."""
        seen = seen or set()
        module = ()
        for i, seg in enumerate(segs):
            if seg in self.children.get(module, ()):
                module = module + (seg,)
                continue
            key = (module, seg)
            if key in seen:
                return module
            seen.add(key)
            target = self.reexports(module).get(seg)
            if target is not None and target[: len(module)] != list(module) + [seg]:
                return self.resolve(target + list(segs[i + 1:]), seen)
            return module
        return module

    def imports(self, module):
        """(target module, how it was written) for each import of `module`."""
        src = self.src[module]
        written = [segs for m in USE_RE.finditer(src) for segs in expand(m.group(1))]
        written += [m.group(1).split('::') for m in PATH_RE.finditer(src)]
        for child in self.children[module]:
            written += [[child, m] for m in re.findall(r'(?<![\w:])' + child + r'::(\w+)', src)]
        for segs in written:
            segs = [s for s in segs if s != '*' and s != 'self' or s is segs[0]]
            absolute = self.absolute(module, segs)
            if absolute is None:
                continue
            target = self.resolve(absolute)
            if target != module and target[: len(module)] != module or (target != module and module == ()):
                yield target, '::'.join(segs)
            elif target != module:
                yield target, '::'.join(segs)


def cycles(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def name(module):
    return '::'.join(module) or 'crate'


def main(roots):
    failed = False
    for root in roots:
        crate = Crate(root)
        graph = {}
        for module in crate.files:
            graph.setdefault(module, {})
            for target, how in crate.imports(module):
                if target in crate.files and target != module:
                    graph[module].setdefault(target, how)
        for comp in cycles(graph):
            failed = True
            members = set(comp)
            print(f'{root}: module cycle of {len(comp)}: ' + ', '.join(name(m) for m in comp))
            for m in comp:
                for t, how in sorted(graph[m].items()):
                    if t in members:
                        print(f'    {name(m)} -> {name(t)}  ({how})')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
