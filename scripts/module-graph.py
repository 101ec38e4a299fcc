#!/usr/bin/env python3
"""Prints the import graph between the top-level modules of the sensor library (`use crate::X`
and `crate::X::` paths, tests included), then the cycles in it. Run from anywhere:

    python3 scripts/module-graph.py [sensor/src]
"""
import re
import sys
from pathlib import Path

src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "sensor/src"
lib = (src / "lib.rs").read_text()
modules = re.findall(r"^pub mod (\w+);", lib, re.M)

def files_of(m):
    single = src / f"{m}.rs"
    return [single] if single.exists() else sorted((src / m).rglob("*.rs"))

edges = {m: set() for m in modules}
for m in modules:
    for f in files_of(m):
        text = f.read_text()
        # `use crate::{a, b::c}` groups and plain `crate::x` paths.
        for group in re.findall(r"crate::\{([^}]*)\}", text):
            for part in group.split(","):
                name = part.strip().split("::")[0]
                if name in edges and name != m:
                    edges[m].add(name)
        for name in re.findall(r"crate::(\w+)", text):
            if name in edges and name != m:
                edges[m].add(name)

for m in modules:
    print(f"{m:12} -> {', '.join(sorted(edges[m])) or '-'}")

# Cycles: strongly connected components with more than one module (Tarjan).
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for m in modules:
    if m not in index:
        visit(m)
print()
print(f"{len(modules)} modules, {sum(len(e) for e in edges.values())} edges, {len(sccs)} cycles")
for c in sccs:
    print("cycle among:", ", ".join(c))
