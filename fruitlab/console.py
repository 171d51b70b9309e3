"""What a training run prints: each log line once (Hydra's formatted one), no third-party advertisements or
notices about third-party internals. `verbose=true` keeps the advertisements and notices."""

import logging
import warnings

# Lightning's loggers: `lightning` prints through a handler of its own, `lightning.pytorch` too when it is
# imported before logging is configured; Hydra's root handler prints the same records again.
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
ADVERTISING_LOGGER = "lightning.pytorch.utilities.rank_zero"
ADVERTISEMENTS = ("litlogger",)  # Lightning's tip to install its cloud logger, printed by every Trainer
# (message, category, module that triggers it): deprecations inside third-party code that a user cannot act on.
THIRD_PARTY_NOTICES = [
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, r"lightning\.pytorch\.utilities\._pytree"),
    # Lightning probes for SLURM on every fit and, on a machine with SLURM's client tools, says `srun` is not
    # used: outside a job a run is a plain local one (inside one, srun is used and Lightning says nothing).
    (r"The `srun` command is available on your system but is not used", UserWarning, r"lightning\.fabric"),
]


class DropAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(word in record.getMessage() for word in ADVERTISEMENTS)


DROP_ADVERTISEMENTS = DropAdvertisements()


def tidy_console(verbose: bool) -> None:
    """Call once Lightning is imported (its handlers are added then); repeated calls change nothing."""
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
            logger.removeHandler(handler)
        logger.propagate = True
    if verbose:
        return
    logging.getLogger(ADVERTISING_LOGGER).addFilter(DROP_ADVERTISEMENTS)
    for message, category, module in THIRD_PARTY_NOTICES:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
