"""The studies: the Fruits-360 seed study (`seed`), the hard study (`hard`) and its report (`hard_report`).
Each composes commands into a reproducible plan; studies sit above `commands` and nothing below imports them."""
