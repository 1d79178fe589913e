"""Same seed, same numbers, whatever trains the clients and with whom.

Every random draw of local training comes from the client's own streams (data order
by client and round, dropout masks by client, round and local step), so a scenario
gives the same train losses and accuracies with clients trained one by one, in
groups of any size, or (tests/test_ray.py) on Ray actors: to float rounding (the
stacked products sum in another order), with the models' own dropout on.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import wirelessfl
from tests.conftest import TINY

AGGREGATORS = ["fedit", "ffa", "flora", "florist", "fedtree"]


def scenario(aggregator: str) -> dict:
    raw = copy.deepcopy(TINY)
    raw["clients"].update(count=6, local_steps=3)
    raw["model"]["lora"]["dropout"] = 0.1  # and tiny-bert's own 0.1 hidden and attention
    raw["method"] = {"aggregator": aggregator, "compressor": "soft"}
    raw["compute"] = {"torch_threads": 1}
    return raw


def same_numbers(a, b, n_test: int) -> None:
    """Train losses to 1e-5 relative; accuracy to within one test example."""
    np.testing.assert_allclose(a.metrics["train_loss"], b.metrics["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(a.clients["train_loss"], b.clients["train_loss"], rtol=1e-5)
    assert np.all(np.abs(a.metrics["accuracy"] - b.metrics["accuracy"]) <= 1 / n_test + 1e-12)
    assert a.metrics["sim_time_s"].tolist() == pytest.approx(b.metrics["sim_time_s"].tolist(),
                                                            rel=1e-9)


@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_group_size_and_batching_change_no_number(aggregator):
    raw = scenario(aggregator)
    ref = wirelessfl.run(raw, output=None, compute__batch_clients=False)
    assert ref.summary["clients_per_pass"] == 1
    n_test = round(TINY["data"]["synthetic"]["num_samples"] * 0.2)
    for size in (1, 2, 3, None):  # None: the default, every client in one pass
        run = wirelessfl.run(raw, output=None, compute__max_batched_clients=size)
        assert min(run.summary["clients_per_pass"], 6) == (size or 6)
        same_numbers(ref, run, n_test)
