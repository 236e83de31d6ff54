"""The names of the files a trained model is kept in. They live here, in the model stage, so the
models never import the run folder that holds them (`runs.RunFolder` names them through these)."""

KERAS_MODEL = "model.keras"
SUMMARY = "model_summary.txt"
CHECKPOINT = "checkpoint.weights.h5"  # the best weights so far, while training
RESUME = "resume"  # the state an interrupted training continues from
HISTORY = "history.csv"
TENSORBOARD = "tensorboard"
GBM_MODEL = "model.lightgbm.txt"  # LightGBM's own text format (no pickle)
LINEAR_MODEL = "model.linear.npz"  # plain arrays
REFIT_DIR = "refit"  # the production model trained on every labelled window (training.refit)
