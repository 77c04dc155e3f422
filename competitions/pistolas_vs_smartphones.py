"""Handguns vs smartphones (Univ. of Granada 2018): class folders; submit ID=file name, index 0/1."""
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders, TestFolder

COMPETITION = Competition(
    slug="pistolas-vs-smartphones",
    title="Pistolas vs smartphones con Deep Learning",
    classes=("pistol", "smartphone"),          # order = submitted index: pistol 0, smartphone 1
    metric="accuracy",
    train=ClassFolders(folder="train"),
    test=TestFolder(folder="test"),
    submission=Submission(id_column="ID", label_column="Ground_Truth", labels="index", ids="name",
                          sample="sample_submission.csv"),
    defaults={"image_size": 224, "folds": 5, "head_epochs": 20},
    recipes={
        # frozen EfficientNet-Lite0 features + a softmax head: CV 1.000 in about a minute on 2 cores
        "fast": {"image_size": 160, "head_epochs": 12, "patience": 3},
        # adds fine-tuning of the last backbone stage on cached activations (flips included)
        "best": {"image_size": 224, "head_epochs": 30, "finetune_epochs": 4,
                 "finetune_from": "block14_add", "augment": "flip"},
    },
)
