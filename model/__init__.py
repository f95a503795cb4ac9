"""Rare-earth supply-chain optimizer: a least-cost LP of the chain (Pyomo + HiGHS)."""

__version__ = "0.1.0"
