"""Scenarios as data: changes to a case's tables, applied on top of a parent's.

A change names a sheet, a filter (`col=value; col=value`, or `*` for all rows), a
column and an operation: set, scale, add, drop (rows), append (a row given as
`col=value; col=value`) or, on the periods sheet, split (one period becomes consecutive
sub-periods, e.g. a crisis quarter by month). Values are typed by the schema, so a
scenario can never put text in a number column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.case.schema import PERIOD, SHEETS, SHEETS_BY_NAME, InputError, Problem
from model.case.workbook import (ROW, Case, check_range, coerce, did_you_mean, parse_number, typed_frame,
                                 unknown_scenario)

SCENARIO_ROW = "_scenario_change_row"


def _pairs(text: str) -> list[tuple[str, str]]:
    out = []
    for part in str(text).split(";"):
        part = part.strip()
        if not part or part == "*":
            continue
        if "=" not in part:
            raise ValueError(f"'{part}' is not col=value")
        k, v = part.split("=", 1)
        out.append((k.strip(), v.strip()))
    return out


def scenario_chain(case: Case, name: str) -> list[str]:
    """The scenario and its ancestors, root first; cycles and unknown names are errors."""
    scen = case.tables["scenarios"]
    file = case.path.split("/")[-1]
    parents = dict(zip(scen["scenario"], scen["parent"].fillna("")))
    rows = dict(zip(scen["scenario"], scen[ROW]))
    if name not in parents:
        raise InputError([Problem(file, "scenarios", None, "scenario", name,
                                  "a scenario named in the scenarios sheet",
                                  unknown_scenario(name, list(parents)))])
    chain = [name]
    while parents.get(chain[-1]):
        nxt = parents[chain[-1]]
        if nxt in chain:
            raise InputError([Problem(file, "scenarios", int(rows[chain[-1]]), "parent", nxt,
                                      "a parent chain that ends at the base case",
                                      "scenario parents form a cycle: " + " -> ".join(chain + [nxt]))])
        chain.append(nxt)
    return list(reversed(chain))


def _typed(sheet: str, column: str, text: str):
    col = SHEETS_BY_NAME[sheet].column(column)
    value, err = coerce(text, col)
    if err is None:
        err = check_range(value, col)
    if err is None and col.required and value is None:
        err = "required value is blank"
    return value, err, col


def apply_scenario(case: Case, name: str) -> Case:
    """A copy of the case with the scenario's (and its ancestors') changes applied."""
    file = case.path.split("/")[-1]
    chain = scenario_chain(case, name)
    out = case.copy()
    changes = case.tables["scenario_changes"]
    problems: list[Problem] = []
    for scen in chain:
        for ch in changes[changes["scenario"] == scen].to_dict("records"):
            problems.extend(_apply_change(out, ch, file))
    if problems:
        raise InputError(problems)
    return out


def _apply_change(case: Case, ch: dict, file: str) -> list[Problem]:
    row = int(ch[ROW])
    sheet, op, column = ch["sheet"], ch["op"], ch["column"] or ""
    where = f"scenario '{ch['scenario']}': "

    def problem(col: str, value, expected: str, msg: str) -> list[Problem]:
        return [Problem(file, "scenario_changes", row, col, value, expected, where + msg)]

    spec = SHEETS_BY_NAME[sheet]
    if sheet == "settings":
        return _apply_setting(case, ch, file, problem)
    if op == "split":
        return _split_period(case, ch, problem)
    df = case.tables[sheet]
    if op == "append":
        try:
            pairs = _pairs(ch["value"])
        except ValueError as exc:
            return problem("value", ch["value"], "col=value; col=value", str(exc))
        rec = {c.name: c.default for c in spec.columns}
        rec[ROW] = None
        errs: list[Problem] = []
        for k, v in pairs:
            if k not in spec.column_names:
                errs += problem("value", k, f"a column of sheet {sheet}",
                                "unknown column" + did_you_mean(k, spec.column_names))
                continue
            value, err, col = _typed(sheet, k, v)
            if err:
                errs += problem("value", v, f"{k}: {col.expected()}", err)
            rec[k] = value
        for c in spec.columns:
            if c.required and rec[c.name] is None and c.name not in dict(pairs):
                errs += problem("value", ch["value"], f"a value for {c.name}",
                                f"the appended row has no {c.name} (a required column)")
        if not errs:
            rec["source"] = rec.get("source") or f"scenario {ch['scenario']}"
            case.tables[sheet] = typed_frame(spec, pd.concat([df, pd.DataFrame([rec])], ignore_index=True))
        return errs
    try:
        pairs = _pairs(ch["filter"] or "*")
    except ValueError as exc:
        return problem("filter", ch["filter"], "col=value; col=value or *", str(exc))
    mask = pd.Series(True, index=df.index)
    for k, v in pairs:
        if k not in spec.column_names:
            return problem("filter", k, f"a column of sheet {sheet}",
                           "unknown column in filter" + did_you_mean(k, spec.column_names))
        value, err, col = _typed(sheet, k, v)
        if err:
            return problem("filter", v, col.expected(), err)
        mask &= df[k] == value
    if not mask.any():
        return problem("filter", ch["filter"], f"a filter matching rows of sheet {sheet}",
                       "the filter matches no row")
    if op == "drop":
        case.tables[sheet] = df[~mask].reset_index(drop=True)
        return []
    if column not in spec.column_names:
        return problem("column", column, f"a column of sheet {sheet}",
                       "unknown column" + did_you_mean(column, spec.column_names))
    col = spec.column(column)
    if op == "set":
        value, err, _ = _typed(sheet, column, ch["value"])
        if err:
            return problem("value", ch["value"], col.expected(), err)
        df = df.copy()
        df[column] = df[column].astype(object)
        df.loc[mask, column] = value
    else:
        if col.dtype not in ("float", "int"):
            return problem("op", op, f"set or drop for text column {column}",
                           f"{op} needs a number column")
        factor, err = parse_number(ch["value"])
        if err:
            return problem("value", ch["value"], "a number", err)
        df = df.copy()
        base = pd.to_numeric(df.loc[mask, column])
        if base.isna().any():
            return problem("column", column, "rows with a value to change",
                           f"{op} applies to a blank cell")
        df.loc[mask, column] = base * factor if op == "scale" else base + factor
        bad = [(v, e) for v in df.loc[mask, column] if (e := check_range(v, col))]
        if bad:
            return problem("value", ch["value"], col.expected(), f"{op} gives {bad[0][0]:g}: {bad[0][1]}")
    case.tables[sheet] = typed_frame(spec, df)
    return []


def _split_period(case: Case, ch: dict, problem) -> list[Problem]:
    """op split: one period becomes n consecutive sub-periods of equal length (start + k d/n,
    duration d/n). Rows keyed by the period (demand) are copied to each sub-period (their
    figures are annual rates); other single-period references (a branch's reveal_period)
    point to the first; period lists name every sub-period."""
    if ch["sheet"] != "periods":
        return problem("op", "split", "set, scale, add, drop or append",
                       f"split applies to the periods sheet only, not {ch['sheet']}")
    try:
        pairs = _pairs(ch["filter"] or "*")
    except ValueError as exc:
        return problem("filter", ch["filter"], "period=<code>", str(exc))
    periods = case.tables["periods"]
    old = dict(pairs).get("period")
    if [k for k, _ in pairs] != ["period"] or old not in set(periods["period"]):
        return problem("filter", ch["filter"], "period=<code of one period of the periods sheet>",
                       "split needs the one period it divides" + did_you_mean(str(old), list(periods["period"])))
    new = [t.strip() for t in str(ch["value"] or "").replace(";", ",").split(",") if t.strip()]
    clash = sorted(set(new) & (set(periods["period"]) - {old}))
    if len(new) < 2 or len(set(new)) < len(new) or clash or "*" in new:
        why = (f"{', '.join(clash)} already name other periods" if clash else
               "the codes must be distinct, and at least two")
        return problem("value", ch["value"], "two or more new period codes separated by commas", why)
    i = int(periods.index[periods["period"] == old][0])
    row = periods.loc[i]
    d = float(row["duration_yr"]) / len(new)
    subs = pd.DataFrame([{**row.to_dict(), "period": code, "start_year": float(row["start_year"]) + k * d,
                          "duration_yr": d} for k, code in enumerate(new)])
    case.tables["periods"] = typed_frame(SHEETS_BY_NAME["periods"], pd.concat(
        [periods.iloc[:i], subs, periods.iloc[i + 1:]], ignore_index=True))
    for spec in SHEETS:
        df = case.tables.get(spec.name)
        refs = [c for c in spec.columns if c.ref == PERIOD]
        if spec.name == "periods" or df is None or df.empty or not refs:
            continue
        for c in refs:
            if c.dtype == "list":
                df = df.copy()
                df[c.name] = df[c.name].map(lambda v: v if not isinstance(v, str) else ",".join(
                    x for item in v.split(",") for x in (new if item == old else [item])))
            elif c.name in spec.key:  # each row naming the period becomes n rows in its place
                hit = (df[c.name] == old).to_numpy()
                reps = np.where(hit, len(new), 1)
                df = df.iloc[np.repeat(np.arange(len(df)), reps)].reset_index(drop=True)
                codes = iter(new * int(hit.sum()))
                df[c.name] = [next(codes) if h else v for v, h in
                              zip(df[c.name], np.repeat(hit, reps))]
            else:
                df = df.copy()
                df.loc[df[c.name] == old, c.name] = new[0]
        case.tables[spec.name] = typed_frame(spec, df)
    return []


def _apply_setting(case: Case, ch: dict, file: str, problem) -> list[Problem]:
    from model.case.schema import SETTINGS_BY_NAME
    key = dict(_pairs(ch["filter"] or "")).get("key", ch["column"])
    if key not in SETTINGS_BY_NAME:
        return problem("filter", ch["filter"], "key=<setting name>",
                       "unknown setting" + did_you_mean(key, list(SETTINGS_BY_NAME)))
    col = SETTINGS_BY_NAME[key]
    if ch["op"] not in ("set", "scale", "add"):
        return problem("op", ch["op"], "set, scale or add", "settings cannot be dropped or appended")
    if ch["op"] == "set":
        value, err = coerce(ch["value"], col)
    else:
        f, err = parse_number(ch["value"])
        cur = case.settings[key]
        if err is None and (cur is None or isinstance(cur, (bool, str))):
            err = f"{ch['op']} needs a setting with a number (it is {cur!r})"
        value = None if err else (float(cur) * f if ch["op"] == "scale" else float(cur) + f)
    err = err or check_range(value, col)
    if err is None and col.required and value is None:
        err = "required value is blank"
    if err:
        return problem("value", ch["value"], col.expected(), err)
    case.settings[key] = value
    return []
