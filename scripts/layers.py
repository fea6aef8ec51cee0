#!/usr/bin/env python3
"""CI check of the crate's module structure: no import cycle, no upward import.

Reads src/**/*.rs as plain text (no cargo, so it works on a tree that does not
compile), collects every `crate::...`, `super::...` and `self::...` path outside
comments and string literals, and checks them against LAYERS below and the
`layer-exception: <from> -> <to>: <reason>` lines of docs/design.md.

Usage: scripts/layers.py [--root DIR] [--graph]     (exit 0 clean, 1 violations)
"""
import argparse, bisect, os, re, sys  # standard library only
from collections import Counter, defaultdict

# Top-level modules, lowest layer first. A module may use its own layer and any
# lower one; reaching up is what turns a stack into a tangle, so it is an error.
LAYERS = {
    0: ["sys", "sync", "error", "trace", "wakers"],
    1: ["completion", "lock"],
    2: ["task"],
    3: ["kthreadd"],
    4: ["kthread"],
    5: ["freezer", "percpu", "worker", "wait"],
    6: ["registry"],
}
LAYER_OF = {m: n for n, mods in LAYERS.items() for m in mods}
EXEMPT = "loom_models"  # test-only, sits above everything: may reference anything
EXCEPTION = re.compile(r"^\W*layer-exception:\s*(\w+)\s*->\s*(\w+)\s*:(.*)$")

# Comments and literals, leftmost first: `//...` (incl. `///`, `//!`), the start
# of a `/* */` block, raw strings, strings, char literals (`'a` is a lifetime).
LEX = re.compile(r"""//[^\n]*|/\*|(?<!\w)[bc]?r(#*)".*?"\1|"(?:\\.|[^"\\])*"|'(?:\\.[^'\n]*|[^\\'\n])'""", re.S)
# One pass over stripped code: a whole `use ...;` (its braces are balanced, so
# swallowing them keeps the brace count right), an inline `mod x {`, a brace,
# or an inline path. Inline mods matter only for resolving `super::`.
TOKEN = re.compile(r"\buse\s+([^;]*);|\bmod\s+(\w+)\s*\{|([{}])"
                   r"|\b((?:crate|super|self)(?:\s*::\s*(?:\w+|\*))+)")


def strip(src):
    """Blank comments, strings and char literals, keeping newlines (line numbers)."""
    out, pos = [], 0
    while m := LEX.search(src, pos):
        start, end = m.span()
        if m.group() == "/*":  # Rust block comments nest: find the matching */
            depth = 1
            while depth and end < len(src):
                step = src[end:end + 2]
                depth += (step == "/*") - (step == "*/")
                end += 2 if step in ("/*", "*/") else 1
        out += [src[pos:start], re.sub(r"[^\n]", " ", src[start:end])]
        pos = end
    return "".join(out) + src[pos:]


def use_leaves(tree, base):
    """Expand a use tree (`crate::{a::{b, c}, d as e}`) into (segments, offset) leaves."""
    toks = [(t.group(), base + t.start()) for t in re.finditer(r"\w+|::|[{},*]", tree)]
    leaves = []

    def walk(i, prefix):
        path, pos = list(prefix), None
        while i < len(toks) and toks[i][0] not in ",}":
            tok, at = toks[i]
            if tok == "{":
                i += 1
                while i < len(toks) and toks[i][0] != "}":
                    i = i + 1 if toks[i][0] == "," else walk(i, path)
                return i + 1
            if tok == "as":
                i += 2  # skip the alias
                continue
            if tok != "::":
                path.append(tok)
                pos = at
            i += 1
        if pos is not None:
            leaves.append((path, pos))
        return i

    walk(0, [])
    return leaves


def resolve(segs, here, modules):
    """(target module, names-the-root) for a crate-local path, else None."""
    if segs[0] == "crate":
        base, rest = (), segs[1:]
    elif segs[0] == "self":
        base, rest = here, segs[1:]
    elif segs[0] == "super":
        k = next((i for i, s in enumerate(segs) if s != "super"), len(segs))
        if k > len(here):
            return None
        base, rest = here[:len(here) - k], segs[k:]
    else:
        return None  # std::, libc::, or a bare name: not a cross-module path
    full = base + tuple(s for s in rest if s != "self")
    n = max(k for k in range(len(full) + 1) if full[:k] in modules)  # longest module prefix
    return full[:n], (n == 0 and len(full) > 0)


def module_of(rel):
    """src/lib.rs -> (), src/a/mod.rs -> (a,), src/a/b.rs -> (a, b)."""
    parts = rel[:-3].split("/")[1:]
    if parts[-1] in ("lib", "mod"):
        parts = parts[:-1]
    return tuple(parts)


def scan(root):
    """All references: (source module, target, names_root, file, line, text)."""
    files = {}
    for dirpath, _, names in os.walk(os.path.join(root, "src")):
        for name in sorted(names):
            if name.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                files[rel] = module_of(rel)
    modules = set(files.values())
    refs = []
    for rel, mod in sorted(files.items()):
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            code = strip(f.read())
        starts = [0] + [m.end() for m in re.finditer("\n", code)]
        stack = []  # one entry per open brace: inline mod name or None
        for m in TOKEN.finditer(code):
            if m.group(2):
                stack.append(m.group(2))
            elif m.group(3) == "{":
                stack.append(None)
            elif m.group(3) and stack:
                stack.pop()
            if not (m.group(1) or m.group(4)):
                continue
            here = mod + tuple(s for s in stack if s)
            found = (use_leaves(m.group(1), m.start(1)) if m.group(1) else
                     [(re.split(r"\s*::\s*", m.group(4)), m.start(4))])
            for segs, pos in found:
                r = resolve(segs, here, modules)
                if r and r[0] != mod:
                    refs.append((mod, r[0], r[1], rel, bisect.bisect(starts, pos), "::".join(segs)))
    return files, refs


def cycles(edges):
    """Shortest cycles covering every edge that lies on any cycle (polynomial, unlike
    enumerating all cycles), each as a node list with the first node repeated."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    cands = set()
    for u, v in edges:
        prev, queue = {v: None}, [v]  # BFS from v back to u closes the cycle u -> v ... u
        for x in queue:
            for y in sorted(graph[x]):
                if y not in prev:
                    prev[y] = x
                    queue.append(y)
        if u in prev:
            path = [u]
            while path[-1] != v:
                path.append(prev[path[-1]])
            nodes = [u] + path[::-1][:-1]
            k = nodes.index(min(nodes))
            cands.add(tuple(nodes[k:] + nodes[:k]))
    covered, out = set(), []
    for c in sorted(cands, key=lambda c: (len(c), c)):
        pairs = set(zip(c, c[1:] + c[:1]))
        if pairs - covered:
            covered |= pairs
            out.append(list(c) + [c[0]])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="repository root (default: the one holding this script)")
    ap.add_argument("--graph", action="store_true", help="print the top-level edges with counts")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.root, "src")):
        sys.exit(f"layers: no src/ under {args.root}")
    files, refs = scan(args.root)
    errors, notes = [], []

    exceptions = {}  # (from, to) -> where it is listed
    design = os.path.join(args.root, "docs", "design.md")
    if os.path.exists(design):
        with open(design, encoding="utf-8") as f:
            for no, line in enumerate(f, 1):
                m = EXCEPTION.match(line.strip())
                if m and not m.group(3).strip(" `*_"):
                    errors.append(f"docs/design.md:{no}: layer exception {m[1]} -> {m[2]} has no reason")
                elif m:
                    exceptions[(m[1], m[2])] = f"docs/design.md:{no}: {m[1]} -> {m[2]}:{m[3].rstrip(' `')}"

    # (a) layers. Every top-level module must be placed in the table.
    for rel, mod in sorted(files.items()):
        if len(mod) == 1 and mod[0] not in LAYER_OF and mod[0] != EXEMPT:
            errors.append(f"{rel}:1: module {mod[0]} is not in the layer table of scripts/layers.py")
    used, seen = set(), set()
    for src, dst, names_root, rel, line, text in refs:
        if not src or src[0] == EXEMPT or (rel, line, text) in seen:
            continue  # lib.rs is wiring; loom_models is test-only
        seen.add((rel, line, text))
        if names_root:
            errors.append(f"{rel}:{line}: {text}: use the defining module's path, not the crate root re-export")
            continue
        a, b = src[0], dst[0]
        la, lb = LAYER_OF.get(a), LAYER_OF.get(b, float("inf") if b == EXEMPT else None)
        if a != b and la is not None and lb is not None and lb > la:
            if (a, b) in exceptions:
                used.add((a, b))
            else:
                errors.append(f"{rel}:{line}: upward import {a} (layer {la}) -> {b} (layer {lb}): {text}")
    notes += [f"layers: exception used: {exceptions[e]}" for e in sorted(used)]
    notes += [f"layers: warning: stale exception (not needed): {exceptions[e]}"
              for e in sorted(set(exceptions) - used)]

    # (b) cycles: among top-level modules, and among the children of each directory
    # module (its mod.rs front is not a node; deeper paths count as their sibling).
    graphs = defaultdict(dict)  # scope -> {(from, to): first file:line}
    for src, dst, _, rel, line, _ in sorted(refs, key=lambda r: (r[3], r[4])):
        if src and dst and src[0] != dst[0] and EXEMPT not in (src[0], dst[0]):
            graphs["top-level modules"].setdefault((src[:1], dst[:1]), f"{rel}:{line}")
        for d in range(1, min(len(src), len(dst))):
            if src[:d] != dst[:d]:
                break
            if src[:d + 1] != dst[:d + 1]:
                graphs["::".join(src[:d]) + "::*"].setdefault((src[:d + 1], dst[:d + 1]), f"{rel}:{line}")
    for scope, edges in sorted(graphs.items()):
        for cyc in cycles(edges):
            chain = " -> ".join("::".join(n) for n in cyc)
            where = "".join(f"\n    {'::'.join(x)} -> {'::'.join(y)}: {edges[(x, y)]}"
                            for x, y in zip(cyc, cyc[1:]))
            errors.append(f"cycle among {scope}: {chain}{where}")

    if args.graph:
        counts = Counter((s[0], d[0] if d else "(crate root)") for s, d, *_ in refs if s and s[:1] != d[:1])
        for (a, b), n in sorted(counts.items()):
            up = LAYER_OF.get(b, -1) > LAYER_OF.get(a, 99)
            up = (" upward, excepted" if (a, b) in exceptions else " UPWARD") if up else ""
            print(f"{a} ({LAYER_OF.get(a, '?')}) -> {b} ({LAYER_OF.get(b, '?')}): {n}{up}")
    for msg in notes + errors:
        print(msg)
    if errors:
        print(f"layers: {len(errors)} violation(s)")
        return 1
    print(f"layers: {len(files)} modules, {len({r[:2] for r in refs})} edges, no cycle, no upward import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
