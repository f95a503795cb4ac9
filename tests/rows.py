"""Row builders for hand-written test cases (one dict per workbook row)."""


def product(code, stage, element="", unit="t_REO", **kw):
    return {"product": code, "stage": stage, "element": element, "unit": unit, **kw}


def proc(code, stage):
    return {"process": code, "stage": stage}


def rec(process, product_, coefficient):
    return {"process": process, "product": product_, "coefficient": coefficient}


def fac(code, country, cap, **kw):
    return {"facility": code, "country": country, "capacity_t_per_yr": cap, **kw}


def fp(facility, process, cost):
    return {"facility": facility, "process": process, "unit_cost_usd_per_t": cost}


def dem(country, product_, qty, period="2025", segment="all", penalty=1e6):
    return {"country": country, "product": product_, "segment": segment, "period": period,
            "quantity_t_per_yr": qty, "shortfall_penalty_usd_per_t": penalty}
