"""Shared pieces every module uses: terms of the product balance and of the objective.

Modules never touch each other's components. A module that adds supply or use of a
product at a node registers a `BalanceTerm`; one that adds money registers a
`CostTerm` naming its component and whether it is a resource cost, a penalty or a
transfer. `model.lp.build` assembles `product_balance` and the objective from them, and
`model.analysis.results` prices every component from the solution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

RESOURCE = "resource"    # real use of resources: the headline cost
PENALTY = "penalty"      # value of unserved demand, never part of the headline
TRANSFER = "transfer"    # money changing hands (duties, floor payments)
CALIBRATION = "calibration"  # calibration terms: unobserved costs inferred from observed output

Node = tuple[str, str, str]  # (country, product, period)


NODE_COLUMNS = ["country", "product", "period"]


@dataclass
class BalanceTerm:
    """coef x var enters the balance of node (country, product, period); + is supply.
    nodes: one node per entry, as tuples or (for big terms, which then skip making a
    tuple per entry) a DataFrame with columns country, product, period."""

    name: str
    nodes: list[Node] | pd.DataFrame
    coefs: np.ndarray
    vars: list

    def node_frame(self) -> pd.DataFrame:
        if isinstance(self.nodes, pd.DataFrame):
            return self.nodes[NODE_COLUMNS]
        return pd.DataFrame(self.nodes, columns=NODE_COLUMNS) if len(self.nodes) else pd.DataFrame(
            {c: pd.Series(dtype=object) for c in NODE_COLUMNS})


@dataclass
class CostTerm:
    """Undiscounted money per year of activity: coef (USD per unit of the variable's
    annual rate) x var in `period`. The objective weighs it by the period weight.
    A transfer that must not steer the plan (a stockpile's purchase value, an offtake
    payment) sets in_objective=False: it is reported, never optimised."""

    component: str
    category: str
    periods: list[str]
    coefs: np.ndarray
    vars: list
    in_objective: bool = True


@dataclass
class ActivityTerm:
    """Activity variables a module declares, so caps and floors can constrain them
    whoever made them. keys: unit (facility or expansion option), country, process,
    period; one row per variable."""

    name: str
    keys: pd.DataFrame
    vars: list


@dataclass
class FlowTerm:
    """Trade flow variables. keys: from_country, to_country, product, period."""

    name: str
    keys: pd.DataFrame
    vars: list


@dataclass
class Registry:
    """What modules add to the shared balance and objective, the demand side, and the
    activity and flow variables other modules may constrain."""

    balance: list[BalanceTerm] = field(default_factory=list)
    costs: list[CostTerm] = field(default_factory=list)
    demand_t_per_yr: dict[Node, float] = field(default_factory=dict)
    # Exogenous supply at a node (scrap arising from products in use), t/yr: the balance's
    # right-hand side is demand - supply.
    supply_t_per_yr: dict[Node, float] = field(default_factory=dict)
    activities: list[ActivityTerm] = field(default_factory=list)
    flows: list[FlowTerm] = field(default_factory=list)
    # Extra inflows into stockpile levels (model.lp.modules.stockpiles.StockInflow), such
    # as a price floor's offtake; filled before the stockpiles module declares.
    stockpile_inflows: list = field(default_factory=list)
    # The product_balance row of each node, filled by the balance module (so a module
    # can value a flow the model does not hold, such as a banned one, by re-solving).
    node_rows: dict = field(default_factory=dict)

    def activity_table(self) -> tuple[pd.DataFrame, list]:
        """All registered activities as one table (row i is variable i of the list)."""
        if not self.activities:
            return pd.DataFrame(columns=["unit", "country", "process", "period"]), []
        keys = pd.concat([a.keys for a in self.activities], ignore_index=True)
        return keys, [v for a in self.activities for v in a.vars]

    def flow_table(self) -> tuple[pd.DataFrame, list]:
        """All registered flows as one table (row i is variable i of the list)."""
        if not self.flows:
            return pd.DataFrame(columns=["from_country", "to_country", "product", "period"]), []
        keys = pd.concat([f.keys for f in self.flows], ignore_index=True)
        return keys, [v for f in self.flows for v in f.vars]

    def add_balance(self, term: BalanceTerm) -> None:
        if len(term.vars):
            self.balance.append(term)

    def add_cost(self, term: CostTerm) -> None:
        if len(term.vars):
            self.costs.append(term)

    def supply_nodes(self) -> set[Node]:
        """Nodes where some term can bring product in (positive coefficient), or an
        exogenous supply does."""
        out: set[Node] = {n for n, q in self.supply_t_per_yr.items() if q > 0}
        nodes, rows = self.node_index()
        coefs = np.concatenate([np.asarray(t.coefs, float) for t in self.balance]) if self.balance else np.zeros(0)
        out.update(nodes[i] for i in np.unique(rows[: len(coefs)][coefs > 0]))
        return out

    def nodes(self) -> list[Node]:
        """Every node with a term or a demand, in first-seen order."""
        return self.node_index()[0]

    def node_index(self) -> tuple[list[Node], np.ndarray]:
        """(every node with a term, a demand or an exogenous supply in first-seen order,
        the node's position for every balance term entry in order). Worked out on codes
        per column: at 600 k flows a tuple per entry cost seconds and hundreds of MB."""
        frames = [t.node_frame() for t in self.balance]
        extra = list(self.demand_t_per_yr) + list(self.supply_t_per_yr)
        if extra:
            frames.append(pd.DataFrame(extra, columns=NODE_COLUMNS))
        if not frames:
            return [], np.zeros(0, np.int64)
        cols = [np.concatenate([f[c].to_numpy(object) for f in frames]) for c in NODE_COLUMNS]
        codes, uniques = zip(*(pd.factorize(c, sort=False) for c in cols))
        key = codes[0].astype(np.int64)
        for code, uniq in zip(codes[1:], uniques[1:]):
            key = key * len(uniq) + code
        pos, _ = pd.factorize(key, sort=False)
        _, at = np.unique(pos, return_index=True)  # the first entry of each node, in node order
        nodes = list(zip(*(c[at].tolist() for c in cols)))
        n_terms = sum(len(t.coefs) for t in self.balance)
        return nodes, pos[:n_terms].astype(np.int64)

    def rhs_t_per_yr(self, nodes: list[Node]) -> list[float]:
        """The balance's right-hand side at each node: demand - exogenous supply."""
        return [self.demand_t_per_yr.get(n, 0.0) - self.supply_t_per_yr.get(n, 0.0) for n in nodes]


class Solution(Protocol):
    def values(self, vars: list) -> np.ndarray: ...
    def duals(self, cons: list) -> np.ndarray: ...


class Module(Protocol):
    """One supply-chain concern: declares its part of the model and extracts its tables."""

    name: str

    def declare(self, m, data, reg: Registry) -> None: ...

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]: ...


def keyed(frame: pd.DataFrame, cols: list[str]) -> list[tuple]:
    """Rows of `cols` as tuples, the index of a sparse Pyomo component. (Columns go
    through plain lists: iterating pandas string arrays row by row is slow.)"""
    return list(zip(*(frame[c].tolist() for c in cols)))
