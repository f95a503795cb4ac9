"""One module per supply-chain concern; `CORE_MODULES` lists them in build order."""

from model.modules.balance import Balance
from model.modules.calibration import Calibration
from model.modules.controls import Controls
from model.modules.demand import Demand
from model.modules.disposal import Disposal
from model.modules.expansion import Expansion
from model.modules.price_floors import PriceFloors
from model.modules.production import Production
from model.modules.stockpiles import Stockpiles
from model.modules.supply_caps import SupplyCaps
from model.modules.tariffs import Tariffs
from model.modules.trade import Trade


def core_modules() -> list:
    """Fresh module instances in build order: whatever makes activity or flow
    variables first (controls and tariffs act on flows; controls pool every origin
    class node made so far; supply caps constrain every activity and flow, expansion's
    included); disposal needs every supply term; the balance is
    assembled last from everything registered. Calibration terms follow production,
    whose activities they price. Price floors come before stockpiles:
    an offtake registers stockpile inflows that the stockpile level balance reads."""
    return [Production(), Calibration(), Expansion(), Trade(), Controls(), Tariffs(), SupplyCaps(),
            PriceFloors(), Stockpiles(), Demand(), Disposal(), Balance()]
