"""Validation checks inside an epoch (`objective.checks_per_epoch`): where in the epoch they fall, the global
index each one is reported and logged at, and what each validates on.

Lightning's fractional `val_check_interval` validates every `int(batches * fraction)` batches, so an epoch whose
batch count is not a multiple of the checks validates once too often and not at its end. `ValidationChecks`
places the checks itself instead: evenly spread, the last one always at the epoch's end. The checks inside an
epoch validate on a fixed, seeded 1/checks of the validation split and the epoch's last one on all of it, so the
checks of an epoch cost less than two whole validation passes whatever their number (docs/sweeps.md)."""

from collections.abc import Callable

import lightning.pytorch as pl


def check_batches(batches: int, checks: int) -> list[int]:
    """The training batches (counted from 1) after which an epoch of `batches` batches validates: `checks` of
    them evenly spread, the last at the epoch's end; at most one per batch, so fewer when batches < checks."""
    return sorted({-(-k * batches // checks) for k in range(1, checks + 1)})  # ceil, in whole numbers


def check_step(epoch: int, batches_done: int, batches: int, checks: int) -> int:
    """The global index of the check that validates after `batches_done` batches of epoch `epoch` (counted from
    0 over the whole fit): the step a check's values are reported and logged at. With one check per epoch it is
    the epoch."""
    placed = check_batches(batches, checks)
    in_epoch = sum(1 for batch in placed if batch < batches_done)  # a validation off the schedule counts as the next
    return epoch * len(placed) + min(in_epoch, len(placed) - 1)


class ValidationChecks(pl.Callback):
    """Validates `checks` times per training epoch at the batches `check_batches` gives, and says which check a
    validation is (`step`). Lightning validates after a batch when its `val_check_batch` divides the batches done
    (or, when infinite, at the epoch's last batch): it is set after each batch to say whether a validation is
    due. `validate_on_part(fraction or None)` chooses what the next validations see."""

    def __init__(self, checks: int, validate_on_part: Callable[[float | None], None]) -> None:
        self.checks = checks
        self.validate_on_part = validate_on_part
        self._due: list[int] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._due = check_batches(int(trainer.num_training_batches), self.checks)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        done = batches_done(trainer)
        due = done in self._due
        trainer.val_check_batch = done if due else float("inf")
        # Several processes validate through Lightning's distributed sampler, sized once: always on the whole split.
        if due and trainer.world_size == 1:
            self.validate_on_part(None if done == self._due[-1] else 1 / self.checks)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.validate_on_part(None)  # a validation after the fit sees the whole split

    def step(self, trainer: pl.Trainer) -> int:
        """The global index of the check that is validating now."""
        return check_step(trainer.current_epoch, batches_done(trainer), int(trainer.num_training_batches), self.checks)


def batches_done(trainer: pl.Trainer) -> int:
    """Training batches done in the current epoch."""
    return trainer.fit_loop.epoch_loop.batch_idx + 1


def check_step_of(trainer: pl.Trainer) -> int:
    """The global index of the check validating now in `trainer`'s fit: its `ValidationChecks`' step, else the
    epoch (a trainer validating once per epoch)."""
    schedule = next((c for c in trainer.callbacks if isinstance(c, ValidationChecks)), None)
    return schedule.step(trainer) if schedule else trainer.current_epoch
