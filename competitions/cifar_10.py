"""CIFAR-10 in Kaggle's file layout: train/<n>.jpg + trainLabels.csv, test/<n>.jpg; accuracy."""
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import LabelsCSV, TestFolder

# The strongest recipe for about an hour on a 2-core CPU (bench/RESULTS.md: test 0.920 in 60-61 min; with
# --epochs 2, 0.917 in 42 min): Lite0 at 128 px, the layers below block7_add run once over the images
# and their mirror images, the three stages above it fine-tuned on those activations with a cosine schedule.
BEST = {"image_size": 128, "head_epochs": 30, "finetune_epochs": 3, "finetune_lr": 1e-3,
        "finetune_schedule": "cosine", "finetune_from": "block7_add", "augment": "flip", "batch_size": 64}

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
    defaults={"holdout": 0.1, **BEST},
    recipes={
        "fast": {"image_size": 96, "head_epochs": 20, "finetune_epochs": 0},   # a head on cached features
        "best": BEST,
    },
)
