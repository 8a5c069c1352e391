"""Router: safe default, canary split per request, sticky A/B arms, ordering by seq."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from llmwatch.inference.router import Route, Router, UnknownDeployment, stable_unit
from llmwatch.schemas import ExperimentSpec, TrafficWeights


def _weights(seq: int = 1, canary: float = 0.05, **kw: object) -> TrafficWeights:
    return TrafficWeights(
        deployment="demo",
        weights={"v1": 1.0 - canary, "v2": canary},
        baseline_version="v1",
        canary_version="v2",
        seq=seq,
        **kw,
    )


def test_without_weights_every_request_goes_to_the_baseline() -> None:
    router = Router({"demo": "v1"})
    routes = {router.choose("demo", f"user-{i}") for i in range(500)} | {router.choose("demo") for _ in range(500)}
    assert routes == {Route("v1", "baseline", None)}
    assert router.weights_seq("demo") is None


def test_unknown_deployment_is_an_error_not_a_guess() -> None:
    with pytest.raises(UnknownDeployment):
        Router({"demo": "v1"}).choose("other")


def test_canary_share_of_10000_requests_matches_its_weight() -> None:
    router = Router({"demo": "v1"})  # unseeded: the bound holds for any draw (±0.015 is 6.9 standard errors)
    assert router.apply(_weights(canary=0.05))
    routes = Counter(router.choose("demo", f"user-{i % 300}") for i in range(10_000))
    share = routes[Route("v2", "canary", None)] / 10_000
    assert 0.035 <= share <= 0.065
    assert set(routes) == {Route("v1", "baseline", None), Route("v2", "canary", None)}


def test_canary_split_is_per_request_not_per_user() -> None:
    router = Router({"demo": "v1"}, rng=random.Random(3))
    router.apply(_weights(canary=0.5))
    versions = {router.choose("demo", "the-same-user").model_version for _ in range(200)}
    assert versions == {"v1", "v2"}


def test_zero_weight_version_is_never_chosen() -> None:
    router = Router({"demo": "v1"}, rng=random.Random(1))
    router.apply(_weights(canary=0.0))
    assert {router.choose("demo").model_version for _ in range(5_000)} == {"v1"}
    router.apply(_weights(seq=2, canary=1.0))
    assert {router.choose("demo").model_version for _ in range(5_000)} == {"v2"}


def test_only_a_newer_seq_applies() -> None:
    router = Router({"demo": "v1"}, rng=random.Random(0))
    assert router.apply(_weights(seq=5, canary=1.0))
    assert not router.apply(_weights(seq=4, canary=0.0))
    assert router.weights_seq("demo") == 5
    assert router.choose("demo").model_version == "v2"
    # the same seq twice with other weights is a doubled controller: the first one stays in force
    assert not router.apply(_weights(seq=5, canary=0.0))
    assert router.choose("demo").model_version == "v2"
    assert router.apply(_weights(seq=6, canary=0.0))
    assert router.choose("demo").model_version == "v1"


def test_a_fenced_controller_cannot_move_traffic() -> None:
    router = Router({"demo": "v1"}, rng=random.Random(0))
    assert router.apply(_weights(seq=5, canary=0.25, epoch=1))
    assert router.apply(_weights(seq=6, canary=0.25, epoch=2))  # the controller that took over (epoch 2)
    # the replaced one (epoch 1) still sends a move, with a higher seq: rejected, the split does not change
    assert not router.apply(_weights(seq=7, canary=1.0, epoch=1))
    assert router.weights_seq("demo") == 6
    # its epoch is stale for every deployment, including one it never moved before
    assert not router.apply(_weights(seq=1, canary=1.0, epoch=1).model_copy(update={"deployment": "other"}))
    assert router.view.epoch == 2 and router.view.rejected == 2
    # a takeover may restart seq lower than the fenced one's last (it rebuilt from the topic): epoch first
    assert router.apply(_weights(seq=6, canary=0.5, epoch=3))


def test_reset_returns_to_the_default() -> None:
    router = Router({"demo": "v1"})
    router.apply(_weights(canary=1.0))
    router.reset("demo")
    assert router.choose("demo") == Route("v1", "baseline", None)


EXPERIMENT = ExperimentSpec(name="prompt-ab", salt="s1", arms={"arm-a": 0.5, "arm-b": 0.3, "arm-c": 0.2})


def _experiment_weights(experiment: ExperimentSpec = EXPERIMENT, seq: int = 1) -> TrafficWeights:
    return TrafficWeights(
        deployment="demo",
        weights={"arm-a": 1.0},
        baseline_version="arm-a",
        experiment=experiment,
        seq=seq,
    )


def test_a_user_always_lands_in_the_same_arm_in_every_router() -> None:
    first, second = Router({"demo": "arm-a"}), Router({"demo": "arm-a"})  # two gateway processes
    first.apply(_experiment_weights())
    second.apply(_experiment_weights())
    for i in range(300):
        user = f"user-{i}"
        arms = {first.choose("demo", user) for _ in range(20)} | {second.choose("demo", user)}
        assert len(arms) == 1
        [route] = arms
        assert route.experiment == "prompt-ab" and route.variant == route.model_version


def test_arm_shares_follow_the_spec_over_many_users() -> None:
    router = Router({"demo": "arm-a"})
    router.apply(_experiment_weights())
    counts = Counter(router.choose("demo", f"user-{i}").model_version for i in range(20_000))
    for arm, share in EXPERIMENT.arms.items():
        assert counts[arm] / 20_000 == pytest.approx(share, abs=0.02)


def test_requests_without_user_id_are_assigned_at_random() -> None:
    router = Router({"demo": "arm-a"}, rng=random.Random(5))
    router.apply(_experiment_weights())
    assert {router.choose("demo", None).model_version for _ in range(300)} == set(EXPERIMENT.arms)


def test_a_new_salt_reshuffles_users() -> None:
    moved = sum(stable_unit("s1", f"u{i}") != stable_unit("s2", f"u{i}") for i in range(100))
    assert moved == 100
    assert all(0.0 <= stable_unit("s1", f"u{i}") < 1.0 for i in range(1000))
