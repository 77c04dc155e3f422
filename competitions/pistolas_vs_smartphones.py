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
    defaults={"image_size": 224},
)
