"""The studies: the Fruits-360 seed study (`seed`), the hard study (`hard`, its plan, its runs) and its report
(`hard_report`). They compose commands and may import every layer; nothing in fruitlab imports them."""
