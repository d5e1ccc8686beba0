#!/usr/bin/env python3
"""Import-cycle check for the core crate (issue #14).

Builds the module graph of `src/` from every `crate::…` and `super::…` path in non-test code
(`use` lines and inline paths; comments, doc comments and `#[cfg(test)]` modules are skipped)
and reports cycles at two granularities:

- top level: `flow`, `provider`, `jose`, `client`, `error`, … (a folder counts as one module);
- file level: `flow::exchange`, `provider::jwks`, … (each file is its own node).

Exit status 1 when a cycle exists. Usage: python3 .ci/modgraph.py [--print]
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel == ["lib"]:
        return []
    return rel


def strip_tests(text):
    """Drops `#[cfg(test)]` items (a `mod … { … }` block or a `mod …;` line) and comments."""
    out = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "#[cfg(test)]":
            j = i + 1
            while j < len(lines) and lines[j].strip().startswith("#["):
                j += 1
            if j < len(lines) and lines[j].strip().endswith(";"):
                i = j + 1
                continue
            depth = 0
            started = False
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                started = started or "{" in lines[j]
                j += 1
                if started and depth <= 0:
                    break
            i = j
            continue
        code = re.sub(r"//.*$", "", line)
        out.append(code)
        i += 1
    return "\n".join(out)


PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def files():
    for root, _, names in os.walk(SRC):
        for n in names:
            if n.endswith(".rs") and n not in ("tests.rs", "test_keys.rs"):
                yield os.path.join(root, n)


def known_modules():
    mods = set()
    for f in files():
        m = module_of(f)
        for k in range(1, len(m) + 1):
            mods.add(tuple(m[:k]))
    # `#[path]` chapters of the manual are files too
    return mods


def resolve(current, kind, segs, mods):
    base = [] if kind == "crate" else list(current[:-1]) if current else []
    if kind == "super":
        # `super::` of a file module `a/b.rs` is `a`; of `a/mod.rs` (module `a`) is the root
        pass
    full = base + segs
    # the longest prefix that is a module
    for k in range(len(full), 0, -1):
        if tuple(full[:k]) in mods:
            return tuple(full[:k])
    return None


def graph(level):
    mods = known_modules()
    edges = {}
    for f in files():
        cur = tuple(module_of(f))
        text = strip_tests(open(f, encoding="utf-8").read())
        for m in PATH.finditer(text):
            kind, rest = m.group(1), m.group(2)
            segs = [s for s in rest.split("::") if s]
            target = resolve(cur, kind, segs, mods)
            if target is None:
                continue
            a, b = cur[:level], target[:level]
            if not a or not b or a == b:
                continue
            # a parent re-exporting its own children is not a dependency on a sibling
            if b[: len(a)] == a or a[: len(b)] == b:
                continue
            edges.setdefault(a, set()).add(b)
    return edges


def cycles(edges):
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif state.get(m) is None:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if state.get(n) is None:
            visit(n)
    return found


def name(n):
    return "::".join(n)


status = 0
for level, label in ((1, "top-level modules"), (9, "files")):
    edges = graph(level)
    if "--print" in sys.argv:
        print(f"# {label}")
        for a in sorted(edges):
            print(f"{name(a)} -> {', '.join(name(b) for b in sorted(edges[a]))}")
    cyc = cycles(edges)
    if cyc:
        status = 1
        for c in cyc:
            print(f"cycle ({label}): {' -> '.join(name(n) for n in c)}")
    else:
        print(f"no cycle among {label} ({len(edges)} modules with dependencies)")
sys.exit(status)
