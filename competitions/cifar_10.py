"""CIFAR-10 in Kaggle's file layout: train/<n>.jpg + trainLabels.csv, test/<n>.jpg; accuracy."""
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import LabelsCSV, TestFolder

COMPETITION = Competition(
    slug="cifar-10",
    title="CIFAR-10 - Object Recognition in Images",
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    metric="accuracy",
    train=LabelsCSV(folder="train", csv="trainLabels.csv", id_column="id", label_column="label"),
    test=TestFolder(folder="test"),
    submission=Submission(id_column="id", label_column="label", labels="name", ids="stem",
                          sample="sampleSubmission.csv"),
    # 50,000 training images: one 10% holdout estimates accuracy to about +-0.4%, so k-fold buys little
    defaults={"image_size": 128, "holdout": 0.1, "head_epochs": 30, "batch_size": 64},
    recipes={
        "fast": {"image_size": 96, "head_epochs": 20},
        "best": {"image_size": 128, "head_epochs": 30, "finetune_epochs": 4, "finetune_lr": 3e-4,
                 "finetune_from": "block14_add", "augment": "flip", "batch_size": 128},
    },
)
