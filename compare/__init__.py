"""The compare tool: list, summary, crosscheck, bench, train and gradcheck across the frameworks."""
