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

from model.lp.columns import Columns

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
    codes: np.ndarray | None = field(default=None, repr=False)  # (entries x 3) node codes, set by the Registry

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
    # Country, product and period codes of the balance's nodes (value -> code per column).
    node_codes: tuple = field(default_factory=lambda: ({}, {}, {}), repr=False)
    # (flows registered, their keys, their variables): flow_table's shared answer
    _flow_table: tuple | None = field(default=None, repr=False)

    def activity_table(self) -> tuple[pd.DataFrame, list]:
        """All registered activities as one table (row i is variable i of the list)."""
        if not self.activities:
            return pd.DataFrame(columns=["unit", "country", "process", "period"]), []
        keys = pd.concat([a.keys for a in self.activities], ignore_index=True)
        return keys, [v for a in self.activities for v in a.vars]

    def flow_table(self) -> tuple[pd.DataFrame, Columns]:
        """All registered flows as one table (row i is variable i of the list); made once
        for the flows registered so far and shared, so callers must not change it (four
        modules read it: each copy took about 0.07 s at 600 k flows)."""
        if not self.flows:
            return pd.DataFrame(columns=["from_country", "to_country", "product", "period"]), Columns([])
        made = self._flow_table
        if made is None or made[0] != len(self.flows):
            keys = pd.concat([f.keys for f in self.flows], ignore_index=True)
            made = self._flow_table = (len(self.flows), keys, Columns.join(f.vars for f in self.flows))
        return made[1], made[2]

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
        per column, each term's once: at 600 k flows a tuple per entry cost seconds and
        hundreds of MB."""
        for term in self.balance:
            if term.codes is None:
                if term.nodes is None:
                    raise RuntimeError(f"balance term {term.name} was released: the balance is already assembled")
                term.codes = self._encode(term.node_frame())
        extra = list(self.demand_t_per_yr) + list(self.supply_t_per_yr)
        parts = [t.codes for t in self.balance]
        if extra:
            parts.append(self._encode(pd.DataFrame(extra, columns=NODE_COLUMNS)))
        if not parts:
            return [], np.zeros(0, np.int64)
        codes = np.concatenate(parts)
        if any(len(table) >= 1 << 21 for table in self.node_codes):  # 21 bits a column in the key below
            raise ValueError("more than 2 million distinct countries, products or periods in the balance")
        key = (codes[:, 0] << 42) | (codes[:, 1] << 21) | codes[:, 2]
        pos, uniq = pd.factorize(key, sort=False)
        decode = [list(table) for table in self.node_codes]  # code -> value (dicts keep insertion order)
        nodes = [(decode[0][k >> 42], decode[1][(k >> 21) & 0x1FFFFF], decode[2][k & 0x1FFFFF])
                 for k in uniq.tolist()]
        n_terms = sum(len(t.coefs) for t in self.balance)
        return nodes, pos[:n_terms].astype(np.int64)

    def release_balance(self) -> None:
        """The balance is assembled (its rows hold every term): drop the terms' per-entry
        node tables and lists, which at 600 k flows held about 80 MB for the rest of the run."""
        for term in self.balance:
            term.nodes = term.codes = None
            term.vars, term.coefs = [], np.zeros(0)

    def _encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), 3), np.int64)
        for j, col in enumerate(NODE_COLUMNS):
            code, uniq = pd.factorize(frame[col].to_numpy(object), sort=False)
            table = self.node_codes[j]
            mapped = np.array([table.setdefault(u, len(table)) for u in uniq], np.int64)
            out[:, j] = mapped[code] if len(mapped) else 0
        return out

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


def var_data(comp) -> list:
    """A Var component's VarData in construction order (index order for a dense Var),
    read from its data dict where that holds every index: iterating a RangeSet index to
    look each one up took 0.1 s at 600 k flows."""
    data = getattr(comp, "_data", None)
    if comp.is_indexed() and isinstance(data, dict) and len(data) == len(comp):
        return list(data.values())
    return list(comp.values())


def keyed(frame: pd.DataFrame, cols: list[str]) -> list[tuple]:
    """Rows of `cols` as tuples, the index of a sparse Pyomo component. (Columns go
    through plain lists: iterating pandas string arrays row by row is slow.)"""
    return list(zip(*(frame[c].tolist() for c in cols)))
