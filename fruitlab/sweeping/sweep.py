"""A sweep: an Optuna study whose trials are Hydra jobs running fit(), recorded in MLflow as one parent run per
study with a nested child run per trial. `run_sweep` puts the parts together: the plan (what to run), the
recorder (MLflow and the results file), the study in its storage, and the scheduler (which runs the trials).

The study lives in persistent storage and its name comes from the command, so running the same command again
resumes it: held points (complete, pruned, running elsewhere) are not run again, failed and interrupted ones are.
"""

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import partial

import optuna
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig

from fruitlab.errors import SweepFailed
from fruitlab.sweeping.claims import add_seeded_trials, enqueue_points, is_warm_started, load_extension
from fruitlab.sweeping.plan import SweepPlan
from fruitlab.sweeping.recorder import SweepRecorder
from fruitlab.sweeping.scheduler import Launch, Scheduler
from fruitlab.sweeping.settings import SweepSettings
from fruitlab.sweeping.storage import open_storage, storage_label, study_lock
from fruitlab.sweeping.study import join_as_worker, make_pruner, make_sampler, open_study, worker_seed
from fruitlab.sweeping.warm_start import Seeding

log = logging.getLogger(__name__)


def run_sweep(
    settings: SweepSettings,
    config: DictConfig,
    overrides: Sequence[Override],
    launch: Launch,
    threads_per_trial: int | None = None,
) -> optuna.Study:
    """Run the sweep's trials in this worker, then report on the study; `launch` runs one trial's job and may be
    called from `settings.n_jobs` threads at once; `threads_per_trial` (torch threads) is set when the trials
    share this machine."""
    plan = SweepPlan.of(settings, config, overrides)
    if plan.redirected is not None:
        (objective,) = plan.objectives
        log.warning(
            "hydra.sweeper.direction=%s wins over objective.direction=%s: the study and each trial's best checkpoint "
            "%s %s (objective.metric)",
            plan.redirected,
            config.objective.direction,
            plan.redirected,
            objective.metric,
        )
    suggest_more = load_extension(settings.custom_search_space, config)
    started = datetime.now()
    storage_url = plan.storage or SweepRecorder.default_storage(plan)
    lock = partial(study_lock, storage_url, plan.study_name)
    with lock():  # one worker at a time creates the stores, the study and the parent run
        recorder = SweepRecorder.open(plan)
        on_stale = recorder.end_stale_trial_run
        storage = open_storage(storage_url, settings.heartbeat_interval, settings.grace_period, on_stale)
        pruner = make_pruner(settings.pruner, plan.pruner_options)
        study = open_study(plan.study_name, storage, plan.objectives, None, pruner)
        worker = join_as_worker(study)
        study.sampler = make_sampler(plan.sampler, worker_seed(plan.seed, worker), plan.sampler_options)
        parent_id = recorder.find_or_create_parent(storage_url)
        warm_start(plan, study, recorder)
    log.info(
        "study %s (%s, %s) in %s: %d trials, %d at a time; worker %d; MLflow parent run %s",
        plan.study_name,
        plan.sampler,
        settings.pruner,
        storage_label(storage_url),
        plan.budget,
        settings.n_jobs,
        worker,
        parent_id,
    )
    with recorder.parent_run():

        def job_overrides(number: int) -> list[str]:
            identity = plan.trial_identity(storage_url, number, threads_per_trial)
            return [*plan.task_overrides, *recorder.parent_overrides(), *identity.overrides()]

        scheduler = Scheduler(plan, study, storage, lock, launch, job_overrides, recorder.trial_finished, suggest_more)
        tally = scheduler.run(started)
        with lock():
            recorder.report(study)
        recorder.log_link()
        failure = tally.failure(plan.study_name)
        if failure is not None:
            raise SweepFailed(failure)
        if tally.all_failed:
            log.warning(
                "all %d trial(s) failed (last: %s); hydra.sweeper.max_failure_rate=1.0 accepts failures, so the sweep "
                "succeeds",
                tally.failed,
                tally.last_failure,
            )
    return study


def warm_start(plan: SweepPlan, study: optuna.Study, recorder: SweepRecorder) -> None:
    """Before any trial runs: the finished runs of `hydra.sweeper.warm_start` become complete trials (once per
    study), then the points of `hydra.sweeper.enqueue` wait to run first. Call under the study's lock."""
    if plan.warm_start and not is_warm_started(study):
        seeding = Seeding.of(recorder.runs_to_start_from(plan.warm_start), plan.space, plan.objectives)
        single = plan.objectives[0].metric if len(plan.objectives) == 1 else None  # Optuna's curves: one objective
        curves = {} if single is None else recorder.objective_curves(seeding.seeds, single, plan.checks_per_epoch)
        add_seeded_trials(study, plan.space, seeding.seeds, curves)
        recorder.record_warm_start(seeding)
        log.info(seeding.summary())
    if plan.enqueue:
        enqueued = enqueue_points(study, plan.enqueue)
        log.info(
            "enqueued %d of %d points to try first (the others are already in the study)", enqueued, len(plan.enqueue)
        )
