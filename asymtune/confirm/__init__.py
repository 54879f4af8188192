"""The decision: rank the sweep's trials, retrain the leaders and the baseline over seeds, choose
on validation, test once."""
