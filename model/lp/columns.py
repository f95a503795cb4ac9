"""Columns of the LP held as arrays where there are many of them.

A module with hundreds of thousands of variables of one kind (the trade flows: 95 % of the
columns at 600 k) declares them as a *column block*: a Pyomo Var indexed 0..n-1 whose
bounds live in two numpy arrays and whose VarData Pyomo makes only when something asks
for one (`model.flow_t_per_yr[i]`, a constraint naming it, a walker printing the
objective). The hand-off gives a block one contiguous run of columns with its bounds
from the arrays, so a flow nobody names never becomes a Python object: at 600 k flows
making the VarData alone took 0.6-1.0 s and reading their bounds and ids back 0.3-0.4 s
(benchmarks/README.md).

`Columns` is the sequence of variables the modules pass around (cost terms, balance
terms, the flow table): segments that are either a list of VarData or a run of a block's
indices. `ColumnMap` finds the LP column of each entry, runs by arithmetic and VarData
by identity. The Pyomo model stays a Pyomo model: walking any expression makes the
VarData it names; only `component_data_objects(Var)` lists a block's flows once made.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import pyomo.core as pyo

_ARRAYS = "_column_bounds"  # attribute of a block's Var: (lower, upper) arrays


def column_block(lower: np.ndarray, upper: np.ndarray, index=None, doc: str | None = None) -> pyo.Var:
    """A Var over 0..n-1 (`index`: a RangeSet(0, n - 1) of the model, else its own) with
    bounds lower[i] <= x[i] <= upper[i] (-inf/inf: none), its VarData made on first access
    (with those bounds). Assign it to the model, then take `Columns.block(var)`."""
    lo = np.asarray(lower, float).copy()
    up = np.asarray(upper, float).copy()
    if lo.shape != up.shape or lo.ndim != 1:
        raise ValueError("a column block needs lower and upper bound arrays of one length")

    def bounds(m, i):
        a, b = lo[i], up[i]
        return (None if a == -np.inf else float(a)), (None if b == np.inf else float(b))

    if index is None:
        index = pyo.RangeSet(0, len(lo) - 1) if len(lo) else []
    var = pyo.Var(index, dense=False, bounds=bounds, doc=doc)
    setattr(var, _ARRAYS, (lo, up))
    return var


def block_bounds(var) -> tuple[np.ndarray, np.ndarray] | None:
    """(lower, upper) arrays of a column block's Var, None for any other Var."""
    return getattr(var, _ARRAYS, None)


class Columns(Sequence):
    """Variables in order, held as segments: a list of VarData, or (var, indices) for a
    run of a column block (its VarData made only when an entry is read)."""

    __slots__ = ("segments", "_ends")

    def __init__(self, segments: list) -> None:
        self.segments = [s for s in segments if len(s if isinstance(s, list) else s[1])]
        self._ends = np.cumsum([len(s) if isinstance(s, list) else len(s[1]) for s in self.segments],
                               dtype=np.int64)

    @classmethod
    def block(cls, var) -> Columns:
        """Every column of a block, in index order."""
        n = len(block_bounds(var)[0])
        return cls([(var, np.arange(n, dtype=np.int64))])

    @classmethod
    def join(cls, parts) -> Columns:
        """The parts (lists of VarData or Columns) one after the other."""
        segs: list = []
        for p in parts:
            if isinstance(p, Columns):
                segs.extend(p.segments)
            elif len(p):
                segs.append(list(p))
        return cls(segs)

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __add__(self, other) -> Columns:
        return Columns.join([self, other])

    def __radd__(self, other) -> Columns:
        return Columns.join([other, self])

    def __iter__(self):
        for s in self.segments:
            if isinstance(s, list):
                yield from s
            else:
                var = s[0]
                for i in s[1].tolist():
                    yield var[i]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        if isinstance(i, (list, np.ndarray)):
            return self.take(np.asarray(i, np.int64))
        i = operator.index(i)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"column {i} of {n}")
        k = int(np.searchsorted(self._ends, i, side="right"))
        j = i - (int(self._ends[k - 1]) if k else 0)
        s = self.segments[k]
        return s[j] if isinstance(s, list) else s[0][int(s[1][j])]

    def take(self, positions) -> Columns:
        """The entries at `positions` (in that order), runs kept as runs."""
        pos = np.asarray(positions, np.int64).reshape(-1)
        if len(self.segments) == 1 and not isinstance(self.segments[0], list):
            var, idx = self.segments[0]
            return Columns([(var, idx[pos])])
        seg = np.searchsorted(self._ends, pos, side="right")
        starts = np.concatenate([[0], self._ends[:-1]])
        out: list = []
        # consecutive entries from one segment stay one segment
        breaks = np.flatnonzero(np.diff(seg)) + 1 if len(seg) else np.zeros(0, np.int64)
        for a, b in zip(np.concatenate([[0], breaks]), np.concatenate([breaks, [len(seg)]])):
            if a == b:
                continue
            k = int(seg[a])
            local = pos[a:b] - starts[k]
            s = self.segments[k]
            out.append([s[j] for j in local.tolist()] if isinstance(s, list) else (s[0], s[1][local]))
        return Columns(out)


class ColumnMap:
    """The LP column of each variable: a block's run by its index, other VarData by
    identity (sorted ids, 16 bytes an entry; a dict id -> column took about 100)."""

    def __init__(self, columns: Columns | list) -> None:
        cols = columns if isinstance(columns, Columns) else Columns.join([columns])
        ids: list[np.ndarray] = []
        where: list[np.ndarray] = []
        self.blocks: dict[int, tuple[object, np.ndarray]] = {}  # id(var) -> (var, column of each index)
        start = 0
        for s in cols.segments:
            if isinstance(s, list):
                ids.append(np.fromiter(map(id, s), np.uint64, len(s)))
                where.append(np.arange(start, start + len(s), dtype=np.int64))
                start += len(s)
                continue
            var, idx = s
            if id(var) not in self.blocks:
                self.blocks[id(var)] = (var, np.full(len(block_bounds(var)[0]), -1, np.int64))
            self.blocks[id(var)][1][idx] = np.arange(start, start + len(idx), dtype=np.int64)
            start += len(idx)
        self.n = start
        # VarData of blocks made so far are found by identity too (a constraint naming a flow)
        for var, lookup in self.blocks.values():
            made = list(var._data.items())
            if made:
                ids.append(np.fromiter((id(v) for _, v in made), np.uint64, len(made)))
                where.append(lookup[np.fromiter((k for k, _ in made), np.int64, len(made))])
        all_ids = np.concatenate(ids) if ids else np.zeros(0, np.uint64)
        order = np.argsort(all_ids, kind="stable")
        self.ids = all_ids[order]
        self.pos = (np.concatenate(where) if where else np.zeros(0, np.int64))[order]

    def __len__(self) -> int:
        return self.n

    def positions(self, vars_) -> np.ndarray:
        """Column of each variable, -1 where it is not one of the LP's."""
        if isinstance(vars_, Columns):
            parts = [self._by_id(s) if isinstance(s, list) else self._run(s) for s in vars_.segments]
            return np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return self._by_id(vars_)

    def _run(self, seg: tuple) -> np.ndarray:
        var, idx = seg
        got = self.blocks.get(id(var))
        return got[1][idx] if got is not None else np.full(len(idx), -1, np.int64)

    def _by_id(self, vars_) -> np.ndarray:
        vars_ = vars_ if isinstance(vars_, list) else list(vars_)
        q = np.fromiter(map(id, vars_), np.uint64, len(vars_))
        if len(self.ids):
            i = np.minimum(np.searchsorted(self.ids, q), len(self.ids) - 1)
            out = np.where(self.ids[i] == q, self.pos[i], -1)
        else:
            out = np.full(len(q), -1, np.int64)
        for j in np.flatnonzero(out < 0).tolist():  # a block's VarData made after the map
            v = vars_[j]
            got = self.blocks.get(id(v.parent_component())) if hasattr(v, "parent_component") else None
            if got is not None:
                out[j] = got[1][v.index()]
        return out
