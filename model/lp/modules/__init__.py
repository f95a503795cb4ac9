"""One module per supply-chain concern; `CORE_MODULES` lists them in build order."""

from model.lp.modules.balance import Balance
from model.lp.modules.benchmarks import Benchmarks
from model.lp.modules.calibration import Calibration
from model.lp.modules.controls import Controls, OriginPools
from model.lp.modules.demand import Demand
from model.lp.modules.disposal import Disposal
from model.lp.modules.expansion import Expansion
from model.lp.modules.price_floors import PriceFloors
from model.lp.modules.production import Production
from model.lp.modules.scrap import Scrap
from model.lp.modules.stockpiles import Stockpiles
from model.lp.modules.supply_caps import SupplyCaps
from model.lp.modules.tariffs import Tariffs
from model.lp.modules.trade import Trade


def core_modules() -> list:
    """Fresh module instances in build order: whatever makes activity or flow
    variables first (controls and tariffs act on flows; supply caps and benchmarks
    constrain every activity and flow, expansion's included). Calibration terms follow
    production, whose activities they price. Price floors come before stockpiles: an
    offtake registers stockpile inflows that the stockpile level balance reads. Scrap
    follows demand, whose shortfall variables its end-of-life returns read. Origin pools
    come after every module that can register an origin-class node (a scrap node or a
    denied segment's node made later would have no way into its pool) and before
    disposal, which needs every supply term; the balance is assembled last."""
    return [Production(), Calibration(), Expansion(), Trade(), Controls(), Tariffs(), SupplyCaps(), Benchmarks(),
            PriceFloors(), Stockpiles(), Demand(), Scrap(), OriginPools(), Disposal(), Balance()]
