"""Machine-learning core: CWT scalograms → CNN2D crop classifier, per season prefix.

No Dagster import: the functions work on plain numpy arrays, any regular time step and any
number of features.

    from cropassets.ml import SeriesRecipe, TrainConfig, train, predict, incremental_analysis

    ck = train(series, labels, field_ids, SeriesRecipe(12, time_step_days=16),  # (N, F, T) raw
               config=TrainConfig(seed=1))  # or just the length: train(..., 12)
    ck.save("cnn2d_k012.pt")
    cls, conf = predict(ck, new_series)          # class index into ck.class_names, -1 nodata
    cls, conf = load_served("k12.pt").predict(new_series)  # CNN2D or forest, whichever won
    report = incremental_analysis(series, labels, field_ids, test=(s2, y2, f2))
    report.knee.length_steps, report.statements
"""

from cropassets.ml.analysis import IncrementalReport, incremental_analysis, plot
from cropassets.ml.baseline import ForestModel, fit_random_forest, random_forest_baseline
from cropassets.ml.checkpoint import Checkpoint
from cropassets.ml.knee import KneeResult, find_knee
from cropassets.ml.model import CNN2D, CNN2DEnsemble, ModelConfig
from cropassets.ml.predict import evaluate, predict, predict_proba
from cropassets.ml.prepare import prepare_inputs
from cropassets.ml.recipe import InputStats, SeriesRecipe
from cropassets.ml.served import ServedModel, load_served, predict_served
from cropassets.ml.splits import FieldSplit, split_fields
from cropassets.ml.train import train
from cropassets.ml.train_config import TrainConfig

__all__ = [
    "CNN2D",
    "CNN2DEnsemble",
    "Checkpoint",
    "FieldSplit",
    "ForestModel",
    "IncrementalReport",
    "InputStats",
    "KneeResult",
    "ModelConfig",
    "SeriesRecipe",
    "ServedModel",
    "TrainConfig",
    "evaluate",
    "find_knee",
    "fit_random_forest",
    "incremental_analysis",
    "load_served",
    "plot",
    "predict",
    "predict_proba",
    "predict_served",
    "prepare_inputs",
    "random_forest_baseline",
    "split_fields",
    "train",
]
