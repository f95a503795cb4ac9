"""One module per supply-chain concern; `CORE_MODULES` lists them in build order."""

from model.modules.balance import Balance
from model.modules.controls import Controls
from model.modules.demand import Demand
from model.modules.disposal import Disposal
from model.modules.production import Production
from model.modules.tariffs import Tariffs
from model.modules.trade import Trade


def core_modules() -> list:
    """Fresh module instances in build order: whatever makes activity or flow
    variables first (controls and tariffs act on flows; controls pool every origin
    class node made so far); disposal needs every supply term; the balance is
    assembled last from everything registered."""
    return [Production(), Trade(), Controls(), Tariffs(), Demand(), Disposal(), Balance()]
