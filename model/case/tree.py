"""Scenario trees (sheet `branches`): what may happen, with what probability, when it is known.

A tree's nodes are its branches plus the root (the here-and-now periods, base-case data).
Each branch has a parent (blank: the root), a probability given its parent, the period in
which it becomes known, and the scenario whose data hold in it. A plan on the tree takes
the decisions of a period once for every branch that cannot yet be told apart in it
(model.lp.stochastic). Checks here need only the sheet and the periods; whether a
branch's scenario leaves the periods before its reveal alone is checked on the models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from model.case.schema import InputError, Problem
from model.case.workbook import ROW, Case, did_you_mean

ROOT = ""          # the root node's name: the here-and-now periods
SUM_TOLERANCE = 1e-9


@dataclass
class Node:
    name: str                   # branch name; ROOT for the root
    parent: str | None          # None for the root
    probability: float          # given the parent (1 for the root)
    reveal_period: str          # first period the node is known in (the first period for the root)
    scenario: str | None        # None: the parent node's data (for the root: the base case)
    row: int | None = None      # Excel row of the branch
    children: list[str] = field(default_factory=list)


@dataclass
class Tree:
    name: str
    nodes: dict[str, Node]      # root first, then in sheet order
    periods: list[str]          # in time order

    def data_scenario(self, name: str) -> str | None:
        """The scenario whose data hold at a node: its own, else its parent's (None: the
        base case)."""
        while name is not None:
            node = self.nodes[name]
            if node.scenario is not None:
                return node.scenario
            name = node.parent
        return None

    def path(self, name: str) -> list[str]:
        """Root first, down to `name`."""
        out = [name]
        while self.nodes[out[-1]].parent is not None:
            out.append(self.nodes[out[-1]].parent)
        return out[::-1]

    def leaves(self) -> list[str]:
        return [n for n, node in self.nodes.items() if not node.children]

    def probability(self, name: str) -> float:
        """Unconditional probability of reaching `name`."""
        p = 1.0
        for n in self.path(name):
            p *= self.nodes[n].probability
        return p

    def start(self, name: str) -> int:
        """Index of the node's reveal period in time order."""
        return self.periods.index(self.nodes[name].reveal_period)

    def owner(self, leaf_or_node: str, period: str) -> str:
        """The node on the path to `leaf_or_node` whose decisions period `period` holds:
        the deepest one revealed by then."""
        t = self.periods.index(period)
        own = ROOT
        for n in self.path(leaf_or_node):
            if self.start(n) <= t:
                own = n
        return own


def _periods_in_order(case: Case) -> list[str]:
    per = case.tables["periods"]
    return list(per.sort_values("start_year", kind="mergesort")["period"])


def tree_names(case: Case) -> list[str]:
    b = case.tables.get("branches")
    return [] if b is None or b.empty else list(dict.fromkeys(b["tree"]))


def check_branches(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    """Every tree: parents known and in the same tree, no cycle, siblings' probabilities
    sum to 1 and share their reveal period, a child revealed after its parent, the root's
    here-and-now periods not empty."""
    b = t.get("branches")
    if b is None or b.empty:
        return
    per = t["periods"].sort_values("start_year", kind="mergesort")["period"].tolist()
    for name, g in b.groupby("tree", sort=False):
        _check_tree(file, name, g, per, out)


def _row(r) -> int | None:
    v = r.get(ROW)
    return int(v) if v == v and v is not None else None


def _check_tree(file: str, tree: str, g: pd.DataFrame, periods: list[str], out: list[Problem]) -> None:
    rows = g.to_dict("records")
    names = [r["branch"] for r in rows]
    bases = {r["base_scenario"] for r in rows if r.get("base_scenario")}
    if len(bases) > 1 or (bases and any(not r.get("base_scenario") for r in rows)):
        r = next(r for r in rows if r.get("base_scenario") != rows[0].get("base_scenario"))
        out.append(Problem(file, "branches", _row(r), "base_scenario", r.get("base_scenario") or "",
                           "the same base scenario on every row of the tree (or blank on all)",
                           f"tree {tree} starts from one scenario; its rows name "
                           + ", ".join(sorted(repr(b) for b in {r.get('base_scenario') or '' for r in rows}))))
    by = {r["branch"]: r for r in rows}
    for r in rows:
        p = r["parent"] or ""
        if p and p not in by:
            out.append(Problem(file, "branches", _row(r), "parent", p, f"a branch of tree {tree}",
                               "unknown parent branch" + did_you_mean(p, names)))
        elif p == r["branch"]:
            out.append(Problem(file, "branches", _row(r), "parent", p, "another branch",
                               "a branch cannot be its own parent"))
    for r in rows:  # cycles: follow parents until the root or a repeat
        seen, cur = [r["branch"]], r["parent"] or ""
        while cur and cur in by and cur not in seen:
            seen.append(cur)
            cur = by[cur]["parent"] or ""
        if cur and cur in seen and cur == r["branch"]:
            out.append(Problem(file, "branches", _row(r), "parent", r["parent"], "a parent chain that ends at the root",
                               "branch parents form a cycle: " + " -> ".join(seen + [cur])))
    kids: dict[str, list[dict]] = {}
    for r in rows:
        kids.setdefault(r["parent"] or ROOT, []).append(r)
    for parent, sib in kids.items():
        total = sum(float(r["probability"]) for r in sib)
        if abs(total - 1.0) > SUM_TOLERANCE:
            where = "the first branches" if parent == ROOT else f"the children of {parent}"
            out.append(Problem(file, "branches", _row(sib[0]), "probability", f"{total:.12g}",
                               "probabilities of siblings summing to 1 (within 1e-9)",
                               f"the probabilities of {where} in tree {tree} ({', '.join(r['branch'] for r in sib)}) "
                               f"sum to {total:.12g}"))
        reveals = {r["reveal_period"] for r in sib}
        if len(reveals) > 1:
            out.append(Problem(file, "branches", _row(sib[0]), "reveal_period", ", ".join(sorted(reveals)),
                               "one reveal period for all siblings",
                               f"siblings in tree {tree} ({', '.join(r['branch'] for r in sib)}) become known in "
                               "different periods; a node branches at one time"))
    for r in rows:
        rp = r["reveal_period"]
        if rp not in periods:
            continue  # the reference check names it
        p = r["parent"] or ""
        if not p:
            if periods.index(rp) == 0:
                out.append(Problem(file, "branches", _row(r), "reveal_period", rp,
                                   "a period after the first (the first periods are decided before anything is known)",
                                   "a first branch revealed in the first period leaves nothing to decide here and now"))
        elif p in by and by[p]["reveal_period"] in periods and periods.index(rp) <= periods.index(by[p]["reveal_period"]):
            out.append(Problem(file, "branches", _row(r), "reveal_period", rp,
                               f"a period after its parent's ({by[p]['reveal_period']})",
                               "a branch must become known after the branch it follows"))


def read_tree(case: Case, name: str) -> Tree:
    """The tree `name` of a validated case (InputError when it has no such tree)."""
    b = case.tables.get("branches")
    file = case.path.split("/")[-1]
    known = tree_names(case)
    if name not in known:
        raise InputError([Problem(file, "branches", None, "tree", name, "a tree of the branches sheet",
                                  "unknown tree" + did_you_mean(name, known) if known else
                                  "unknown tree: the workbook has no branches sheet rows")])
    periods = _periods_in_order(case)
    rows = b[b["tree"] == name].to_dict("records")
    base = next((r["base_scenario"] for r in rows if r.get("base_scenario")), None)
    nodes = {ROOT: Node(ROOT, None, 1.0, periods[0], base)}
    for r in rows:
        nodes[r["branch"]] = Node(r["branch"], r["parent"] or ROOT, float(r["probability"]), r["reveal_period"],
                                  r["scenario"] or None, _row(r))
    for n, node in nodes.items():
        if node.parent is not None:
            nodes[node.parent].children.append(n)
    return Tree(name, nodes, periods)
