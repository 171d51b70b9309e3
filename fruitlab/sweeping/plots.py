"""What a sweep's parent run shows at the end: the study's plots (optuna.visualization.matplotlib) and a CSV of
all trials, made here and recorded by the recorder."""

import logging
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import optuna
from matplotlib.figure import Figure
from optuna import visualization as vis
from optuna.trial import FrozenTrial, TrialState

from fruitlab.sweeping.objectives import Objective

log = logging.getLogger(__name__)

Plot = Callable[[], object]  # returns matplotlib Axes (or an array of them)


def _single_objective_plots(study: optuna.Study, complete: Sequence[FrozenTrial]) -> dict[str, Plot]:
    plots: dict[str, Plot] = {"optimization_history": lambda: vis.matplotlib.plot_optimization_history(study)}
    if study.trials and study.trials[-1].params:
        plots["parallel_coordinate"] = lambda: vis.matplotlib.plot_parallel_coordinate(study)
        plots["slice"] = lambda: vis.matplotlib.plot_slice(study)
    # Importances need a model fitted over several trials and parameters.
    if len(complete) >= 2 and len(complete[-1].params) >= 2:
        plots["param_importances"] = lambda: vis.matplotlib.plot_param_importances(study)
    else:
        log.info("parameter importances skipped: they need 2 complete trials and 2 parameters")
    return plots


def _multi_objective_plots(study: optuna.Study, objectives: Sequence[Objective]) -> dict[str, Plot]:
    names = [o.metric for o in objectives]
    plots: dict[str, Plot] = {}
    if len(objectives) <= 3:
        plots["pareto_front"] = lambda: vis.matplotlib.plot_pareto_front(study, target_names=names)
    for index, name in enumerate(names):

        def target(trial: FrozenTrial, index: int = index) -> float:
            return trial.values[index]

        plots[f"{name}/optimization_history"] = lambda t=target, n=name: vis.matplotlib.plot_optimization_history(
            study, target=t, target_name=n
        )
        if study.trials and study.trials[-1].params:
            plots[f"{name}/parallel_coordinate"] = lambda t=target, n=name: vis.matplotlib.plot_parallel_coordinate(
                study, target=t, target_name=n
            )
    return plots


def study_plots(study: optuna.Study, objectives: Sequence[Objective]) -> Iterator[tuple[str, Figure]]:
    """(name, figure) of each plot that the study's trials allow; none before a trial completes."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        log.info("no complete trial: no study plots")
        return
    plots = (
        _multi_objective_plots(study, objectives) if len(objectives) > 1 else _single_objective_plots(study, complete)
    )
    logging.getLogger("matplotlib.category").setLevel(logging.WARNING)  # categorical numbers are fine here
    for name, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-API and small-sample warnings
            axes = plot()
        yield name, np.atleast_1d(axes).flat[0].figure


def trials_table(study: optuna.Study) -> str:
    """Every trial as a CSV row: number, state, values, params, user attributes and times."""
    frame = study.trials_dataframe(
        attrs=("number", "state", "values", "params", "user_attrs", "datetime_start", "datetime_complete", "duration")
    )
    return frame.to_csv(index=False)
