"""Aggregation rules, one file each; importing this package registers them."""

from wirelessfl.learning.aggregators import fedit, fedtree, ffa, flora, florist  # noqa: F401
from wirelessfl.learning.aggregators.base import AGGREGATORS, Aggregator, register_aggregator

__all__ = ["AGGREGATORS", "Aggregator", "register_aggregator"]
