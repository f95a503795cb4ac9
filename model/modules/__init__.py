"""One module per supply-chain concern; `CORE_MODULES` lists them in build order."""

from model.modules.balance import Balance
from model.modules.demand import Demand
from model.modules.disposal import Disposal
from model.modules.production import Production
from model.modules.trade import Trade


def core_modules() -> list:
    """Fresh module instances in build order (disposal needs every supply term first;
    the balance is assembled last from everything registered)."""
    return [Production(), Trade(), Demand(), Disposal(), Balance()]
