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
    defaults={"image_size": 96},
)
