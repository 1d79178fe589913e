"""What ``wirelessfl validate`` checks and prints: a scenario's :class:`~wirelessfl.sizes.Plan`.

:func:`plan` builds it from the learning facts an earlier build of the same learning
side stored (:mod:`wirelessfl.facts`): every check and number of the radio side
(placement, path loss, fading, the controller's budget, the selector, the loggers)
is computed again, and neither torch nor the model is loaded. Without stored facts
(or with ``offline``) it builds the run's components in full, as ``wirelessfl run``
does, and stores the facts for the next time; a run stores them too (:func:`remember`).
"""

from __future__ import annotations

from typing import Any

from wirelessfl import build
from wirelessfl.facts import LearningFacts, facts_key, load_facts, save_facts
from wirelessfl.scenario import Scenario
from wirelessfl.selection import n_selected
from wirelessfl.sizes import Plan, RoundSizes


def learning_facts(p: Plan, info: dict[str, Any]) -> LearningFacts:
    """What the plan ``p`` of built components takes from the learning side, with the
    controller's lines ``info``."""
    return LearningFacts(rows=p.sizes.rows(), round_flops=p.sizes.round_flops,
                         broadcast_bits=float(p.broadcast_bits), sparsifies=p.sparsifies,
                         train_examples=p.train_examples, test_examples=p.test_examples,
                         trainable_values=p.trainable_values, info=dict(info))


def remember(sc: Scenario, c: build.Components) -> None:
    """Store the learning facts of ``c`` (built from the user's ``sc``) for later
    ``validate`` calls, unless the controller's offline stage ran (its lines and
    scenario are then not what ``validate`` without ``--offline`` shows)."""
    if c.preparation.info:
        return
    try:
        save_facts(facts_key(sc), learning_facts(c.plan(), c.preparation.info))
    except OSError:  # a file that vanished while being stamped: nothing is stored
        return


def from_facts(sc: Scenario, facts: LearningFacts, profiles: list[Any], cell: Any
               ) -> Plan | None:
    """The plan of ``sc`` from its learning ``facts``, its device ``profiles`` and
    ``cell`` (built and checked first, by :func:`plan`), with every other radio-side
    check in the order a full build makes them; None when the facts lack a client's
    rank.

    Raises
    ------
    ScenarioError, PluginError
        What a full build raises for the radio side (one line naming the key).
    """
    controller = build.build_controller(sc)
    ranks = build.client_ranks(sc)
    if not set(ranks) <= set(facts.rows):
        return None
    selector = build.build_selector(sc)
    build.build_loggers(sc)
    sizes = RoundSizes.from_rows(facts.rows, ranks, sc.radio.bits_per_value, profiles,
                                 facts.round_flops)
    return Plan(sc, cell, sizes, n_selected(selector, sc.clients.count, sc.clients.fraction),
                facts.broadcast_bits, facts.sparsifies, bool(controller.needs_budget),
                facts.train_examples, facts.test_examples, facts.trainable_values)


def plan(sc: Scenario, offline: bool = False) -> tuple[Plan, dict[str, Any]]:
    """The plan of ``sc`` and the controller's lines (``Preparation.info``).

    The device profiles and the cell are built and checked first, before anything
    imports torch (fast one-line errors). Then from the stored learning facts when
    there are some for ``sc`` (no torch); otherwise, or with ``offline`` (the
    controller's offline stage runs), from a full build, whose facts are then stored
    (not those of an offline stage, which changes the scenario).
    """
    profiles = build.device_profiles(sc)
    cell = build.build_cell(sc)
    key = facts_key(sc)
    if not offline:
        facts = load_facts(key)
        if facts is not None:
            quick = from_facts(sc, facts, profiles, cell)
            if quick is not None:
                return quick, dict(facts.info)
    c = build.build_run(sc, offline=offline)
    p = c.plan()
    if not offline:
        save_facts(key, learning_facts(p, c.preparation.info))
    return p, dict(c.preparation.info)
