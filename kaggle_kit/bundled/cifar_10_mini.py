"""CIFAR-10 mini: the bundled demo competition (400 train, 200 test images; see bench/make_demo_data.py).

Same file layout and submission format as ``cifar-10``: train/<n>.jpg + trainLabels.csv,
test/<n>.jpg, ``id,label`` with the class name; accuracy. The local Kaggle server ships its
archive and solution in ``kaggle_local/competitions/cifar-10-mini/``.
"""
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import LabelsCSV, TestFolder

COMPETITION = Competition(
    slug="cifar-10-mini",
    title="CIFAR-10 mini (kaggle-kit demo)",
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    metric="accuracy",
    train=LabelsCSV(folder="train", csv="trainLabels.csv", id_column="id", label_column="label"),
    test=TestFolder(folder="test"),
    submission=Submission(id_column="id", label_column="label", labels="name", ids="stem",
                          sample="sampleSubmission.csv"),
    defaults={"image_size": 96},
)
