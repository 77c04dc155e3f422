"""The competition spec, plugin loading and finding the project and its default competition."""
from __future__ import annotations

from pathlib import Path

import pytest

from kaggle_kit.competition import Competition, Submission
from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import DataError, KitError
from kaggle_kit.layouts import ClassFolders
from kaggle_kit.project import Project, load_plugin

PLUGIN = '''
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders

COMPETITION = Competition(slug="{slug}", classes={classes!r}, metric="{metric}",
                          train=ClassFolders(), submission=Submission())
'''


def plugin(folder: Path, name: str, slug: str = "tiny-birds", classes: tuple = ("owl", "tit"),
           metric: str = "accuracy", text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text if text is not None else PLUGIN.format(slug=slug, classes=classes, metric=metric))
    return path


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# -- the spec --------------------------------------------------------------------------------
def spec(**kw) -> Competition:
    values = dict(slug="pets", classes=("cat", "dog"), metric="accuracy", train=ClassFolders(),
                  submission=Submission())
    return Competition(**{**values, **kw})


def test_spec_refuses_too_few_or_repeated_classes_and_unknown_metrics() -> None:
    with pytest.raises(KitError, match="pets: a competition needs at least two classes"):
        spec(classes=("cat",))
    with pytest.raises(KitError, match="class names repeat"):
        spec(classes=("cat", "dog", "cat"))
    with pytest.raises(KitError) as e:
        spec(metric="logloss")
    assert "did you mean log_loss" in one_line(e)


def test_class_index_uses_the_label_map() -> None:
    comp = spec(label_map={"0": "cat", "1": "dog"})
    assert [comp.class_index(x, "here") for x in ("0", "1", "dog")] == [0, 1, 1]
    with pytest.raises(DataError) as e:
        comp.class_index("7", "train.csv")
    assert one_line(e) == "train.csv: label '7' is not a class of pets (cat, dog)"


def test_config_layers_defaults_recipe_and_overrides() -> None:
    comp = spec(defaults={"image_size": 96, "folds": 3},
                recipes={"fast": {"folds": 2, "head_epochs": 1}, "best": {"image_size": 300}})
    assert comp.config() == TrainConfig(image_size=96, folds=3)
    assert comp.config("default") == comp.config()
    fast = comp.config("fast", {"head_epochs": 5, "seed": None})
    assert (fast.image_size, fast.folds, fast.head_epochs, fast.seed) == (96, 2, 5, TrainConfig().seed)
    with pytest.raises(KitError) as e:
        comp.config("slow")
    assert one_line(e) == "pets has no recipe 'slow'; known: default, fast, best"
    with pytest.raises(KitError, match="unknown training option.*: epochs"):
        comp.config(overrides={"epochs": 3})


def test_train_config_round_trips_through_a_dict() -> None:
    cfg = TrainConfig(image_size=64, holdout=0.2, extra={"note": "x"})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_submission_columns_and_ids() -> None:
    assert Submission(id_column="ID").columns(("a", "b")) == ["ID", "label"]
    assert Submission(labels="proba").columns(("a", "b")) == ["id", "a", "b"]
    assert Submission(labels="proba", proba_columns=("p_a", "p_b")).columns(("a", "b")) == ["id", "p_a", "p_b"]
    assert Submission(ids="stem").id_of("cat/17.jpg") == "17"
    assert Submission(ids="name").id_of("cat/17.jpg") == "17.jpg"
    assert Submission(ids="stem").id_of("img.0.png") == "img.0"


# -- plugin loading --------------------------------------------------------------------------
def test_load_plugin_returns_competition_with_its_source(tmp_path: Path) -> None:
    path = plugin(tmp_path, "tiny_birds.py")
    comp = load_plugin(path)
    assert (comp.slug, comp.classes, comp.source) == ("tiny-birds", ("owl", "tit"), str(path))


def test_plugin_with_a_syntax_error(tmp_path: Path) -> None:
    path = plugin(tmp_path, "broken.py", text="COMPETITION = Competition(\n  slug='x',\n")
    with pytest.raises(KitError) as e:
        load_plugin(path)
    msg = one_line(e)
    assert msg.startswith(f"{path}: plugin failed to load: SyntaxError")


def test_plugin_without_competition(tmp_path: Path) -> None:
    path = plugin(tmp_path, "empty.py", text="SLUG = 'nothing here'\n")
    with pytest.raises(KitError) as e:
        load_plugin(path)
    assert one_line(e) == f"{path}: a plugin must define COMPETITION = Competition(...)"


def test_plugin_whose_spec_is_wrong_names_the_file(tmp_path: Path) -> None:
    path = plugin(tmp_path, "one_class.py", classes=("owl",))
    with pytest.raises(KitError) as e:
        load_plugin(path)
    assert one_line(e) == f"{path}: tiny-birds: a competition needs at least two classes"


def test_project_loads_plugins_skips_private_files_and_refuses_duplicates(tiny_project: Project) -> None:
    folder = tiny_project.root / "competitions"
    plugin(folder, "tiny_birds.py")
    plugin(folder, "_shared.py", text="raise RuntimeError('never imported')\n")
    comps = tiny_project.competitions
    assert {"tiny-pets", "tiny-birds"} <= set(comps)
    assert comps["tiny-birds"].source == str(folder / "tiny_birds.py")

    plugin(folder, "z_birds_again.py")
    with pytest.raises(KitError) as e:
        _ = Project(tiny_project.root).competitions
    msg = one_line(e)
    assert str(folder / "z_birds_again.py") in msg and str(folder / "tiny_birds.py") in msg


def test_extra_plugin_folders_from_the_environment(tiny_project: Project, tmp_path: Path,
                                                  kit_env: pytest.MonkeyPatch) -> None:
    plugin(tmp_path / "more", "tiny_birds.py")
    assert "tiny-birds" not in Project(tiny_project.root).competitions
    kit_env.setenv("KAGGLE_KIT_COMPETITIONS", str(tmp_path / "more"))
    assert Project(tiny_project.root).competitions["tiny-birds"].source == str(tmp_path / "more" / "tiny_birds.py")


def test_unknown_competition_lists_known_and_suggests_the_closest(tiny_project: Project) -> None:
    plugin(tiny_project.root / "competitions", "tiny_birds.py")
    with pytest.raises(KitError) as e:
        tiny_project.competition("tiny-pet")
    msg = one_line(e)
    assert msg.startswith("unknown competition 'tiny-pet'; did you mean tiny-pets")
    known = msg.split("Known: ")[1].split(", ")
    assert {"tiny-pets", "tiny-birds"} <= set(known)


def test_no_competition_named_and_no_default(tiny_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny_project.root)
    with pytest.raises(KitError, match="no competition named and no default set"):
        tiny_project.competition()


# -- the default competition -----------------------------------------------------------------
def test_default_slug_from_the_environment(tiny_project: Project, kit_env: pytest.MonkeyPatch) -> None:
    kit_env.chdir(tiny_project.root / "data" / "tiny-pets" / "train")
    tiny_project.set_default("other")
    kit_env.setenv("KAGGLE_KIT_COMPETITION", "tiny-pets")
    assert tiny_project.default_slug() == "tiny-pets"
    assert tiny_project.competition().slug == "tiny-pets"


@pytest.mark.parametrize("where", ["data/tiny-pets/train/cat", "checkpoints/tiny-pets/run-1", "submissions/tiny-pets"])
def test_default_slug_from_the_folder_you_are_in(tiny_project: Project, kit_env: pytest.MonkeyPatch,
                                                 where: str) -> None:
    folder = tiny_project.root / where
    folder.mkdir(parents=True, exist_ok=True)
    tiny_project.set_default("something-else")        # the folder wins over the project default
    kit_env.chdir(folder)
    assert tiny_project.default_slug() == "tiny-pets"


def test_default_slug_from_the_kaggle_kit_file(tiny_project: Project, kit_env: pytest.MonkeyPatch) -> None:
    kit_env.chdir(tiny_project.root)
    assert tiny_project.default_slug() is None
    tiny_project.set_default("tiny-pets")
    assert (tiny_project.root / ".kaggle-kit").read_text() == "competition=tiny-pets\n"
    assert tiny_project.default_slug() == "tiny-pets"
    assert tiny_project.competition().slug == "tiny-pets"
    (tiny_project.root / ".kaggle-kit").write_text("# written by hand\n competition = tiny-pets \n")
    assert tiny_project.default_slug() == "tiny-pets"


# -- finding the project ---------------------------------------------------------------------
def test_project_find(tmp_path: Path, kit_env: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    deep = root / "data" / "x" / "train"
    deep.mkdir(parents=True)
    (root / "competitions").mkdir()
    assert Project.find(deep).root == root.resolve()

    marked = tmp_path / "marked"
    (marked / "sub").mkdir(parents=True)
    (marked / ".kaggle-kit").write_text("competition=x\n")
    assert Project.find(marked / "sub").root == marked.resolve()

    kit_env.setenv("KAGGLE_KIT_HOME", str(marked))
    assert Project.find(deep).root == marked.resolve()
