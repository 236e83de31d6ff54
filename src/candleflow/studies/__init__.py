"""Studies: orchestrators that run the pipeline many times and compare the results, above the
stages they call. `walkforward` (families out of sample, folds x seeds, bootstrap intervals) and
`tune` (an Optuna search over config keys)."""
