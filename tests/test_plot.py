"""Plots: rendered to real files and checked by decoding them, plus the figure's content."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from _report_values import OVERFIT, UNDERFIT, founding_config, founding_curves, founding_views
from conftest import shared_corpus
from PIL import Image

from fitdoc.errors import FitdocError
from fitdoc.history.curves import Curves
from fitdoc.history.rundir import Run
from fitdoc.report.plot import DPI, OKABE_ITO, build_figure, choose_log, plot_runs

GOLDEN = Path(__file__).parent / "golden"


def single_view() -> Run:
    return Run("founding-l2-0.001", founding_curves(0.001), UNDERFIT, founding_config(0.001, "x"))


def decode(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def has_color(image: Image.Image, hex_color: str, min_pixels: int = 50) -> bool:
    rgb = np.asarray(image).reshape(-1, 3).astype(int)
    target = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - target).sum(axis=1) < 30).sum()) >= min_pixels


def texts(figure) -> str:
    return "\n".join(t.get_text() for t in figure.findobj(lambda a: hasattr(a, "get_text")))


# ---------------------------------------------------------------- one run


def test_single_run_png_has_two_panels_and_decodes(tmp_path: Path) -> None:
    out = plot_runs([single_view()], tmp_path / "nested" / "curves.png")
    assert out == tmp_path / "nested" / "curves.png"
    image = decode(out)
    assert image.size == (int(12.4 * DPI), int(4.8 * DPI))
    assert has_color(image, OKABE_ITO["blue"]) and has_color(image, OKABE_ITO["vermillion"])
    assert has_color(image, OKABE_ITO["green"])  # the regularization part of the loss
    assert 20_000 < out.stat().st_size < 1_000_000


def test_single_run_content() -> None:
    figure = build_figure([single_view()])
    metric_ax, loss_ax = figure.axes
    assert metric_ax.get_yscale() == "linear"  # 0.28 -> 0.03: less than a decade
    overfit = build_figure([Run("l2=0", founding_curves(0.0))])
    assert overfit.axes[0].get_yscale() == "log"  # 0.25 -> 0.0028: two decades
    assert metric_ax.get_xlabel() == "epoch" and metric_ax.get_ylabel() == "MAE"
    assert [t.get_text() for t in metric_ax.get_legend().get_texts()] == [
        "train MAE",
        "validation MAE",
        "train/val gap",
    ]
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == [
        "train loss",
        "validation loss",
        "regularization part",
    ]
    words = texts(figure)
    assert "founding-l2-0.001: underfit (over-regularized)" in words
    assert "Suggested change: model.l2: 0.001 -> 0.0001 (lower L2 tenfold)" in words
    val = founding_curves(0.001).val
    assert f"epoch {int(np.argmin(val))}" in words  # the validation minimum is marked


def test_single_run_without_loss_or_diagnosis_has_one_panel(tmp_path: Path) -> None:
    curves = dataclasses.replace(founding_curves(0.0), train_loss=None, val_loss=None)
    out = plot_runs([Run("bare", curves)], tmp_path / "bare.png")
    assert decode(out).size == (int(7.5 * DPI), int(4.8 * DPI))
    assert len(build_figure([Run("bare", curves)]).axes) == 1


def test_metric_that_is_the_loss_gets_no_second_panel() -> None:
    c = founding_curves(0.0)
    curves = dataclasses.replace(c, metric="loss", train=c.train_loss, val=c.val_loss, reg_loss=None)
    figure = build_figure([Run("loss", curves)])
    assert len(figure.axes) == 1 and figure.axes[0].get_ylabel() == "loss"


def test_sparse_and_missing_series(tmp_path: Path) -> None:
    e = np.arange(40, dtype=float)
    val = np.where(e % 5 == 4, 1 / (e + 2), np.nan)  # validation every fifth epoch
    curves = Curves(epochs=e, train=1 / (e + 1), val=val, metric="mae", source="sparse.csv")
    figure = build_figure([Run("sparse", curves)])
    val_line = figure.axes[0].get_lines()[1]
    assert len(val_line.get_xdata()) == 8 and np.isfinite(val_line.get_ydata()).all()
    train_only = Curves(epochs=e, train=1 / (e + 1), val=None, metric="mae", source="t.csv")
    assert decode(plot_runs([Run("train only", train_only)], tmp_path / "t.png")).size[0] > 0


# ---------------------------------------------------------------- scale


def test_scale_choice() -> None:
    wide, narrow = np.array([0.3, 0.003]), np.array([0.3, 0.1])
    assert choose_log([wide], "auto") == (True, None)
    assert choose_log([narrow], "auto") == (False, None)
    assert choose_log([narrow], "log") == (True, None)
    assert choose_log([wide], "linear") == (False, None)
    assert choose_log([np.array([-1.0, 5.0])], "auto") == (False, None)
    log, note = choose_log([np.array([0.0, 5.0])], "log")
    assert not log and "zero or negatives" in note


def test_negative_values_stay_linear_and_say_why() -> None:
    e = np.arange(30, dtype=float)
    curves = Curves(epochs=e, train=-1 - e / 10, val=-0.5 - e / 20, metric="loss", source="neg.csv")
    figure = build_figure([Run("neg", curves)], scale="log")
    assert figure.axes[0].get_yscale() == "linear"
    assert "linear scale: the values include zero or negatives" in texts(figure)


def test_linear_forced() -> None:
    figure = build_figure([single_view()], scale="linear")
    assert {ax.get_yscale() for ax in figure.axes} == {"linear"}


# ---------------------------------------------------------------- several runs


def test_several_runs_overlay_with_config_legend(tmp_path: Path) -> None:
    views = founding_views()
    figure = build_figure(views)
    metric_ax, loss_ax = figure.axes
    assert metric_ax.get_title() == "MAE" and loss_ax.get_title() == "loss"
    assert metric_ax.get_yscale() == "log"
    run_legend, kind_legend = figure.legends
    assert [t.get_text() for t in run_legend.get_texts()] == [
        "l2=0: overfit (gap)",
        "l2=0.0001: balanced",
        "l2=0.001: underfit (over-regularized)",
    ]
    assert [t.get_text() for t in kind_legend.get_texts()] == [
        "validation",
        "train",
        "validation minimum",
    ]
    # train dashed and validation solid in the run's colour, then its minimum marker
    first = [(line.get_color(), line.get_linestyle()) for line in metric_ax.get_lines()[:3]]
    blue = OKABE_ITO["blue"]
    assert first == [(blue, "--"), (blue, "-"), (blue, "None")]
    image = decode(plot_runs(views, tmp_path / "runs.png"))
    assert image.size[1] == int(4.8 * DPI) and image.size[0] > int(12.0 * DPI)  # + legend
    assert has_color(image, OKABE_ITO["green"]) and has_color(image, OKABE_ITO["vermillion"])


def test_several_runs_without_loss_have_one_panel() -> None:
    views = [
        Run(v.name, dataclasses.replace(v.curves, train_loss=None, val_loss=None), None, v.config)
        for v in founding_views()
    ]
    figure = build_figure(views)
    assert len(figure.axes) == 1 and len(figure.legends) == 2


def test_runs_on_different_metrics_get_their_own_panels() -> None:
    c = founding_curves(0.0)
    as_loss = dataclasses.replace(c, metric="loss", train=c.train_loss, val=c.val_loss)
    figure = build_figure([Run("a", c), Run("b", as_loss), Run("c", founding_curves(0.001))])
    assert [ax.get_title() for ax in figure.axes] == ["MAE", "loss"]
    assert len(figure.axes[0].get_lines()) == 2 * 2 + 2  # two runs: train, val, minimum marker


def test_many_runs_stay_distinguishable() -> None:
    base = founding_curves(0.0)
    views = [Run(f"r{i}", dataclasses.replace(base, val=base.val * (1 + i / 10))) for i in range(10)]
    lines = [line for line in build_figure(views).axes[0].get_lines() if line.get_linestyle() == "-"]
    assert len({(line.get_color(), line.get_marker()) for line in lines}) == 10


def test_svg_is_valid_and_reproducible(tmp_path: Path) -> None:
    first = plot_runs(founding_views(), tmp_path / "a.svg")
    second = plot_runs(founding_views(), tmp_path / "b.svg")
    root = ET.parse(first).getroot()
    assert root.tag.endswith("svg") and float(root.get("width").removesuffix("pt")) > 864  # 12 in
    assert first.read_bytes() == second.read_bytes()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["curves.jpg", "curves", "curves.pdf"])
def test_unsupported_extension_names_the_path(tmp_path: Path, name: str) -> None:
    with pytest.raises(FitdocError) as info:
        plot_runs([single_view()], tmp_path / name)
    assert name in info.value.one_line() and ".png, .svg" in info.value.one_line()
    assert not (tmp_path / name).exists()


def test_uppercase_extension_is_accepted(tmp_path: Path) -> None:
    assert decode(plot_runs([single_view()], tmp_path / "CURVES.PNG")).size[0] > 0


def test_nothing_to_plot(tmp_path: Path) -> None:
    empty = Curves(epochs=np.arange(3.0), train=np.full(3, np.nan), val=None, metric="mae", source="e.csv")
    with pytest.raises(FitdocError, match="no train or validation values"):
        plot_runs([Run("e", empty)], tmp_path / "e.png")
    with pytest.raises(FitdocError, match="no runs"):
        plot_runs([], tmp_path / "none.png")


# ---------------------------------------------------------------- golden image


def test_golden_image(tmp_path: Path) -> None:
    """Pixel comparison with a tolerance (fonts and antialiasing differ a little between machines)."""
    from matplotlib.testing.compare import compare_images

    golden = GOLDEN / "founding_single.png"
    out = plot_runs(
        [Run("founding-l2-0", founding_curves(0.0), OVERFIT, founding_config(0.0, "x"))],
        tmp_path / "single.png",
    )
    if not golden.exists():
        pytest.fail(f"golden image missing; copy {out} to {golden} after checking it by eye")
    assert compare_images(str(golden), str(out), tol=8) is None


# ---------------------------------------------------------------- the real corpus

CORPUS_FILES = [
    "keras_csvlogger/streamflow_regression_150ep.csv",
    "pandas_history/power_consumption_no_index_47ep.csv",
    "history_json/bikeshare_transformer_noisy_140ep.json",
    "lightning_metrics/stock_lstm_sparse_30ep.csv",
    "hf_trainer_state/codebert_cls_overfit_10ep.json",
    "other/tem_cnn_hparams_train_val_test_200ep.csv",
]


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_plots_one_real_file_of_each_format(tmp_path: Path, name: str) -> None:
    from fitdoc.history.load import read_history

    path = shared_corpus() / "real" / name
    curves = read_history(path)
    diagnosis = _diagnose(curves)
    out = plot_runs([Run(path.stem, curves, diagnosis)], tmp_path / "one.png")
    image = decode(out)
    assert image.size[0] >= 1000 and image.size[1] == int(4.8 * DPI)
    assert has_color(image, OKABE_ITO["blue"])


def test_plots_real_files_of_every_format_together(tmp_path: Path) -> None:
    from fitdoc.history.load import read_history

    corpus = shared_corpus() / "real"
    views = [Run(Path(n).stem, read_history(corpus / n)) for n in CORPUS_FILES]
    out = plot_runs(views, tmp_path / "all.svg")
    assert ET.parse(out).getroot().tag.endswith("svg")


def _diagnose(curves: Curves):
    try:
        from fitdoc.diagnosis.decide import diagnose_curves
    except ImportError:  # the rule engine is optional for the plotting itself
        return None
    return diagnose_curves(curves)
