"""The inventory scenario: one item with limited stock, bought by many at once."""

from toctou.lab.inventory.routes import router
from toctou.lab.inventory.strategies import STRATEGIES, Purchase, Sale, Strategy

__all__ = ["STRATEGIES", "Purchase", "Sale", "Strategy", "router"]
