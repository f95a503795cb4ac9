"""Export controls as data, and the origin classes that stop them being dodged.

A control by exporter X on products P to destinations D (DESIGN section 4):
- `ban`: no X-origin flow of P may reach D;
- `quota`: X-origin flows of P to D are capped in tonnes of element content (or tonnes
  of product when no element is named), as t/yr or a share of a sourced reference flow;
- `licence`: an approval share of the reference flow passes at an added cost per t.

When D is every other country and nothing is exempt, X's own lanes carry all
X-origin material, so the control acts on X's lanes and no class is needed. Otherwise
material could be re-exported through a third country, so P carries two origin
classes, `P@X` and `P@other`, with their own balances and flows; each class is
absorbed into the country's use pool `P`, where processes and demand draw from
either; and no country may ship `P@X` to D. An extraterritorial control (the 0.1 %
rule) extends classes to the downstream closure of P, and a process outside X whose
inputs are in that closure runs `clean` (inputs from the other class, output other
class) or `tainted` (inputs from the pool, output X class) within its one capacity.

Origin means mined or processed in X: every output made in X is X class.
Only products a control needs carry classes; a case without controls has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from model.case.codes import expand, periods_in, split_codes
from model.case.derived import downstream_closure
from model.case.schema import InputError, Problem

OTHER = "other"
SEP = "@"


def label(product: str, cls: str) -> str:
    return f"{product}{SEP}{cls}" if cls else product


def labels(products: pd.Series, classes: pd.Series) -> np.ndarray:
    """label() for whole columns (made once per distinct pair: few, against 600 k flows)."""
    p_code, p_uni = pd.factorize(products.to_numpy(object), sort=False)
    c_code, c_uni = pd.factorize(classes.to_numpy(object), sort=False)
    pair = p_code.astype(np.int64) * max(len(c_uni), 1) + c_code
    uniq, inv = np.unique(pair, return_inverse=True)
    made = np.array([label(p_uni[k // max(len(c_uni), 1)], c_uni[k % max(len(c_uni), 1)]) for k in uniq.tolist()],
                    dtype=object)
    return made[inv.reshape(-1)] if len(made) else np.zeros(0, object)


def split_labels(labels: pd.Series) -> tuple[pd.Series, pd.Series]:
    """'Dy_ox@CHN' -> ('Dy_ox', 'CHN'); 'Dy_ox' -> ('Dy_ox', '')."""
    parts = labels.astype(str).str.split(SEP, n=1, expand=True)
    if parts.shape[1] == 1:
        return parts[0], pd.Series("", index=labels.index)
    return parts[0], parts[1].fillna("")


@dataclass
class Control:
    """One export-control row, expanded to explicit sets."""

    name: str
    kind: str
    exporter: str
    products: list[str]          # products the control names (and their closure if extraterritorial)
    destinations: list[str]
    periods: list[str]
    element: str
    cap_t_per_yr: float | None   # quota or licensed amount, per year
    licence_cost_usd_per_t: float
    reference_flow_t_per_yr: float | None
    extraterritorial: bool
    classes: bool                # whether the control acts through origin classes
    segments: list[str] = field(default_factory=list)  # end-use control: segments denied

    @property
    def on_flows(self) -> bool:
        """Whether the control acts on flows (a ban, quota or licence); an end-use
        control acts on the demand of its segments instead (`denied_demand`)."""
        return not self.segments


@dataclass
class Origin:
    """Which products carry origin classes, controlled by whom, and which are modal."""

    controller: dict[str, str] = field(default_factory=dict)   # product -> X
    modal: set[str] = field(default_factory=set)               # extraterritorial closure
    controls: list[Control] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.controller)


def derive_origin(controls: pd.DataFrame, countries: list[str], blocs: dict[str, list[str]],
                  products: list[str], groups: dict[str, list[str]], periods: list[str],
                  recipes: pd.DataFrame, file: str, supply_caps: pd.DataFrame | None = None,
                  tariffs: pd.DataFrame | None = None) -> Origin:
    """Expand the export_controls sheet and decide which products carry classes.

    A diversification cap naming one supplier country (no more than 65 % of the EU's
    use from China) also gives its products that country's origin class, so material
    of that origin re-exported through a third country still counts as its supply.
    Likewise a tariff naming one exporter country gives its products that origin class
    where no other country's origin is tracked on them, so a duty on Chinese magnets is
    paid on Chinese magnets shipped through a third country (rules of origin); where
    another origin is tracked the tariff counts the shipping country."""
    origin = Origin()
    problems: list[Problem] = []
    from model.case.workbook import ROW
    for r in (supply_caps.to_dict("records") if supply_caps is not None else []):
        if r["max_share"] == r["max_share"] and r["max_share"] is not None and r["country"] in countries:
            for p in expand(r["product"], groups, products):
                prev = origin.controller.setdefault(p, r["country"])
                if prev != r["country"]:
                    problems.append(Problem(file, "supply_caps", int(r[ROW]) if r[ROW] == r[ROW] else None,
                                            "country", r["country"],
                                            f"the same supplier as other origin-tracked rows on {p} ({prev})",
                                            "two countries' origins on one product would need more than two "
                                            "origin classes, which this model does not track"))
    for r in controls.to_dict("records"):
        x = r["exporter"]
        prods = expand(r["product"], groups, products)
        dest = [c for c in expand(r["destinations"] or "*", blocs, countries)
                if c not in set(expand(r["exempt"], blocs, countries)) and c != x]
        pers = periods_in(r["periods"], periods)
        extra = bool(r["extraterritorial"])
        if extra:
            prods = sorted(downstream_closure(set(prods), recipes), key=products.index)
        everyone = set(countries) - {x}
        segments = split_codes(r.get("segments"))
        # An end-use control needs classes even on every destination: the denied segments
        # draw from the other class while the rest of demand draws from the pool.
        classes = extra or set(dest) != everyone or bool(segments)
        ref = r["reference_flow_t_per_yr"]
        ref = None if ref is None or ref != ref else float(ref)
        if r["kind"] == "quota":
            q = r["quota_t_per_yr"]
            cap = float(q) if q == q and q is not None else float(r["quota_share"]) * ref
        elif r["kind"] == "licence":
            cap = float(r["licence_approval_share"]) * ref
        else:
            cap = None
        cost = r["licence_cost_usd_per_t"]
        origin.controls.append(Control(r["control"], r["kind"], x, prods, dest, pers,
                                       r["element"] or "", cap,
                                       float(cost) if cost == cost and cost is not None else 0.0,
                                       ref, extra, classes, segments))
        if classes:
            for p in prods:
                prev = origin.controller.setdefault(p, x)
                if prev != x:
                    problems.append(Problem(file, "export_controls", int(r[ROW]) if r[ROW] == r[ROW] else None,
                                            "exporter", x, f"the same exporter as other class-tracked controls on {p} ({prev})",
                                            "two exporters' controls on one product need two origin "
                                            "classes, which this model does not track"))
            if extra:
                origin.modal.update(prods)
    if problems:
        raise InputError(problems)
    for r in (tariffs.to_dict("records") if tariffs is not None else []):
        if r["exporter"] in countries:
            for p in expand(r["product"], groups, products):
                origin.controller.setdefault(p, r["exporter"])
    return origin


def denied_demand(demand: pd.DataFrame, origin: Origin) -> pd.DataFrame:
    """Demand with two columns: `denied_by`, the end-use control that denies the row
    (its country a destination, its product and segment named, its period covered), ''
    where none does; and `node_product`, the node the row draws from: the product's
    `other` class where denied (no X-origin material may reach it), else the use pool."""
    by = pd.Series("", index=demand.index, dtype=object)
    for ctrl in origin.controls:
        if ctrl.on_flows:
            continue
        hit = (demand["country"].isin(ctrl.destinations) & demand["product"].isin(ctrl.products)
               & demand["segment"].isin(ctrl.segments) & demand["period"].isin(ctrl.periods)
               & (by == ""))
        by[hit] = ctrl.name
    node = demand["product"].astype(object).where(by == "", demand["product"] + SEP + OTHER)
    return demand.assign(denied_by=by.to_numpy(), node_product=node.to_numpy())


def split_modes(acts: pd.DataFrame, recipes: pd.DataFrame, origin: Origin) -> pd.DataFrame:
    """Add a `mode` column: '' normally; a process outside X consuming a modal product
    runs as two rows, 'clean' and 'tainted', sharing the unit's capacity."""
    acts = acts.assign(mode="")
    if not origin.modal:
        return acts
    ins = recipes[(recipes["coefficient"] < 0) & recipes["product"].isin(origin.modal)]
    x_of = ins.assign(x=ins["product"].map(origin.controller)).groupby("process")["x"].first()
    need = acts["process"].map(x_of)
    modal = need.notna() & (need != acts["country"])
    if not modal.any():
        return acts
    split = acts[modal]
    out = pd.concat([acts[~modal], split.assign(mode="clean"), split.assign(mode="tainted")])
    return out.sort_index(kind="stable").reset_index(drop=True)


def activity_nodes(acts: pd.DataFrame, recipes: pd.DataFrame, origin: Origin) -> pd.DataFrame:
    """Every recipe line of every activity row as (row index, country, node product,
    period, coefficient). Outputs of classed products go to their class node (X class
    when made in X or tainted), inputs come from the use pool (or the other class, clean)."""
    j = acts[["country", "process", "period", "mode"]].reset_index().merge(recipes, on="process", sort=False)
    if not origin.active:
        return j.rename(columns={"product": "node_product"})
    x = j["product"].map(origin.controller)
    classed = x.notna()
    out = j["coefficient"] > 0
    to_x = classed & out & ((j["country"] == x) | (j["mode"] == "tainted"))
    to_other = classed & out & ~to_x
    from_other = classed & ~out & (j["mode"] == "clean")
    node = j["product"].astype(object).copy()
    node[to_x] = j.loc[to_x, "product"] + SEP + x[to_x]
    node[to_other | from_other] = j.loc[to_other | from_other, "product"] + SEP + OTHER
    return j.assign(node_product=node.to_numpy())


def class_lanes(lanes: pd.DataFrame, origin: Origin) -> pd.DataFrame:
    """Lanes with an origin-class column `cls` ('' for unclassed products): a classed
    product's lane carries each class separately."""
    lanes = lanes.assign(cls="")
    if not origin.active:
        return lanes
    x = lanes["product"].map(origin.controller)
    classed = x.notna()
    if not classed.any():
        return lanes
    a = lanes[classed].assign(cls=x[classed].to_numpy())
    b = lanes[classed].assign(cls=OTHER)
    return pd.concat([lanes[~classed], a, b], ignore_index=True)


def controlled_mask(flows: pd.DataFrame, ctrl: Control) -> np.ndarray:
    """Which flow rows (from_country, to_country, product, cls, period) a control covers:
    X-class flows from anywhere to D, or, without classes, X's own flows to D. An
    end-use control covers no flow."""
    if not ctrl.on_flows:
        return np.zeros(len(flows), dtype=bool)
    base = (flows["product"].isin(ctrl.products) & flows["to_country"].isin(ctrl.destinations)
            & flows["period"].isin(ctrl.periods))
    if ctrl.classes:
        base &= flows["cls"] == ctrl.exporter
    else:
        base &= flows["from_country"] == ctrl.exporter
    return base.to_numpy(bool)
