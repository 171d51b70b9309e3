"""The sweeper's pieces without training: search spaces from Hydra's override syntax, and how workers claim
trials from a real Optuna storage."""

from datetime import datetime

import optuna
import pytest
from conftest import named_sweeps_line, run_cli
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from fruitlab.errors import ConfigError
from fruitlab.sweeping.claims import FAIL_REASON, claim
from fruitlab.sweeping.objectives import Objective
from fruitlab.sweeping.space import SearchSpace
from fruitlab.sweeping.storage import open_storage
from fruitlab.sweeping.study import SAMPLERS, make_pruner, make_sampler, open_study, worker_seed


def space(*overrides: str) -> SearchSpace:
    return SearchSpace.from_overrides(OverridesParser.create().parse_overrides(list(overrides)))


def test_comma_lists_make_a_grid_of_every_point():
    grid_space = space("optim=sgd,adam,adadelta", "lr=0.1,0.01", "batch_size=64")
    assert grid_space.is_comma_grid
    grid = grid_space.grid()
    assert len(grid) == 6
    assert {(p["optim"], p["lr"]) for p in grid} == {(o, lr) for o in ("sgd", "adam", "adadelta") for lr in (0.1, 0.01)}
    assert list(grid_space.overrides({"optim": "adam", "lr": 0.01})) == ["optim=adam", "lr=0.01"]


def test_ranges_intervals_and_choices_become_distributions():
    sampled = space("lr=tag(log, interval(1e-4, 1e-1))", "data.n_components=range(10,211,20)",
                    "model=choice(vgg1,lenet)", "batch_size=tag(int, interval(16, 128))")  # fmt: skip
    assert not sampled.is_comma_grid
    lr, components, model, batch = (p.distribution for p in sampled.parameters)
    assert lr == FloatDistribution(1e-4, 1e-1, log=True)
    assert components == IntDistribution(10, 210, step=20)
    assert model == CategoricalDistribution(["vgg1", "lenet"])
    assert batch == IntDistribution(16, 128)
    assert sampled.parameters[1].values == tuple(range(10, 211, 20))
    with pytest.raises(ConfigError, match="continuous"):
        sampled.grid()
    assert len(space("data.n_components=range(10,211,20)", "model=choice(vgg1,lenet)").grid()) == 22


def test_the_upstream_sweepers_grammar():
    batch, order, width = (p.distribution for p in space(
        "batch_size=int(interval(8,16))", "order=shuffle(range(1,4))", "width=tag(log, int(interval(8, 256)))"
    ).parameters)  # fmt: skip
    assert batch == IntDistribution(8, 16)  # integers, not floats
    assert order == CategoricalDistribution([1, 2, 3])  # the range's values, stop excluded
    assert width == IntDistribution(8, 256, log=True)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_samples_a_seeded_study_the_same_way_twice(name):
    def sampled(seed: int) -> list[dict]:
        study = optuna.create_study(sampler=make_sampler(name, seed, {}))
        study.optimize(lambda t: (t.suggest_float("x", -1, 1, step=0.25) - 0.5) ** 2 + t.suggest_int("n", 0, 9), 4)
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
        return [t.params for t in study.trials]

    assert sampled(3) == sampled(3)


def test_each_worker_gets_its_own_seed_and_the_first_keeps_the_sweeps():
    assert worker_seed(42, 0) == 42 and worker_seed(None, 0) is None
    seeds = {worker_seed(42, w) for w in range(1, 6)} | {worker_seed(43, 1)}
    assert len(seeds) == 6 and 42 not in seeds
    assert worker_seed(42, 1) == worker_seed(42, 1)


def test_a_list_valued_choice_is_written_back_as_it_was_given():
    betas = space("optim.betas=[0.9,0.999],[0.5,0.9]")
    (point,) = betas.grid()[:1]
    assert list(betas.overrides(point)) == ["optim.betas=[0.9,0.999]"]


@pytest.fixture
def grid_study(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}", heartbeat_interval=60, grace_period=None)
    study = open_study("grid", storage, [Objective("val_loss", "minimize")], make_sampler("grid", 0, {}),
                       make_pruner("none", {}))  # fmt: skip
    grid_space = space("lr=0.1,0.01,0.001")
    return study, storage, grid_space, grid_space.grid()


def test_claims_hand_out_each_grid_point_once_and_retry_failures_in_a_later_invocation(grid_study):
    study, storage, grid_space, grid = grid_study
    first = datetime.now()

    def next_trial(started: datetime) -> optuna.Trial | None:
        claimed = claim(study, storage, grid_space, grid, len(grid), started)
        return None if claimed is None else claimed.trial

    failing = next_trial(first)
    failing.set_user_attr(FAIL_REASON, "boom")
    study.tell(failing, state=TrialState.FAIL)
    done = next_trial(first)
    study.tell(done, 1.0)
    running = next_trial(first)
    assert [failing.params["lr"], done.params["lr"], running.params["lr"]] == [0.1, 0.01, 0.001]
    assert next_trial(first) is None  # the failure is not retried in the invocation that saw it fail

    retry = next_trial(datetime.now())  # a later invocation
    assert retry.params == failing.params
    assert next_trial(datetime.now()) is None  # the last point is still running elsewhere


def test_the_sweeper_and_the_sweep_group_are_found_by_hydra():
    result = run_cli("--info", "plugins")
    assert "FruitlabOptunaSweeper" in result.stdout
    result = run_cli("--help")
    assert named_sweeps_line() in result.stdout


def test_a_bad_sweep_setting_is_one_clear_line(store):
    result = run_cli("-m", "lr=0.1,0.01", "hydra.sweeper.sampler=bogus", f"tracking.uri={store}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "fruitlab: error: unknown sampler 'bogus'; "
        "valid samplers: auto, bruteforce, cmaes, gp, grid, nsga2, qmc, random, tpe"
    )
    result = run_cli("-m", "lr=interval(0.001,0.1)", "hydra.sweeper.sampler=grid", f"tracking.uri={store}")
    assert result.returncode == 2
    assert "cannot be a grid axis" in result.stderr.strip().splitlines()[-1]
