"""Intel & MobileODT cervical cancer screening: cervix types; log loss on one probability per class."""
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders, TestFolder

COMPETITION = Competition(
    slug="intel-mobileodt-cervical-cancer-screening",
    title="Intel & MobileODT Cervical Cancer Screening",
    classes=("Type_1", "Type_2", "Type_3"),
    metric="log_loss",
    train=ClassFolders(folder="train"),
    test=TestFolder(folder="test"),
    submission=Submission(id_column="image_name", labels="proba", ids="name"),
    defaults={"image_size": 224, "label_smoothing": 0.05},
)
