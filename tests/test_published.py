"""Published numbers are data transcribed from the papers' texts; these tests check them
against the texts, and a sample of cells of every table against values typed here from the
papers by hand (independently of the transcription script)."""

import math
import re
from pathlib import Path

import pytest

from advbench.report.papers import PAPER_FILES, PAPERS, layout, published, tables

PAPERS_DIR = Path(__file__).resolve().parents[2] / "shared" / "papers"


@pytest.mark.parametrize("paper", PAPERS)
def test_every_published_token_stands_on_its_cited_line(paper):
    path = PAPERS_DIR / PAPER_FILES[paper]
    if not path.exists():
        pytest.skip(f"paper text not here: {path}")
    lines = path.read_text().splitlines()
    cells = published(paper)
    assert cells
    for p in cells:
        line = lines[p.line - 1]
        if p.text:
            assert p.text in line.split("\t"), (p, line)
        else:  # a blank cell of the printed table: two tabs in a row on that line
            assert "\t\t" in line or line.endswith("\t"), (p, line)
        if p.value:
            try:
                value = float(p.value)
            except ValueError:
                assert p.value == p.text  # text values ("2.0,0.01") kept as printed
                continue
            token = re.sub(r"</?b>|%", "", p.text)
            m = re.search(r"([\d.]+) \\ge 10\^\{-2\}", token)
            expected = float(m.group(1)) / 100 if m else float(token)
            assert math.isclose(value, expected, rel_tol=1e-9), p


# (table, row, column, value as printed in the paper), typed from the texts by hand.
HAND = [
    ("fidel:I", "MNIST NsLoss", "ACC", 95.65),
    ("fidel:I", "CIFAR10 JacobReg", "λ", 0.1),
    ("fidel:III", "Untargeted CW-L2-HC", "JacobReg ε1", 94),
    ("fidel:III", "Targeted HopSkipJump", "Combined ε5", 89),
    ("fidel:IV", "Untargeted HopSkipJump", "JacobReg ε10", 58),
    ("fidel:IV", "Targeted PGD-L2", "NsLoss ε3", 85),
    ("fidel:V", "Untargeted PGD-L2", "NsLoss ε5", 44),
    ("fidel:VI", "Targeted PGD-L2", "NsLoss ε10", 6),
    ("zantedeschi:1", "ResNet + RELU", "ResNet + BRELU", 75.94),
    ("zantedeschi:1", "CNN + RELU", "CNN + BRELU", 90.16),
    ("zantedeschi:2", "GDA + RELU", "Robustness", 0.440),
    ("zantedeschi:2", "VAT", "Training set distance", 6.64),
    ("zantedeschi:3", "Label smoothing", "Local sensitivity", 0.2289),
    ("zantedeschi:4", "FGSM adversarial training", "C&W", 97.71),
    ("zantedeschi:5", "GDA + RELU", "FGSM", 59.96),
    ("madnet:1", "PGD (ε = 0.15)", "MadNet + Adv training", 98.4),
    ("madnet:1", "No Attack", "CE", 99.22),
    ("madnet:2", "C&W (c = 0.1)", "MadNet", 63.7),
    ("madnet:3", "BIM (ε = 0.005)", "MadNet + Adv training", 78.1),
    ("madnet:4", "MadNet C&W", "CIFAR-100 (ε=0.01)", 98),
    ("madnet:4", "CE BIM", "MNIST (ε=0.1, c=0.1)", 81.7),
    ("jakubovitz:1", "No defense", "mean ‖J(x_pert)‖F", 0.1877),
    ("jakubovitz:2", "Jacobian regularization, post-processing training", "ρ_adv", 0.3424),
    ("jakubovitz:3", "Jacobian regularization & Adversarial Training", "Test accuracy", 98),
    ("jakubovitz:3", "Cross-Lipschitz regularization & Adversarial Training", "ρ_adv", 0.3238),
    ("jakubovitz:4", "Jacobian regularization & Adversarial Training", "ρ_adv", 0.0603),
    ("pesso:1", "MNIST ε = 0.3 Ours", "Best attack", 90.4),
    ("pesso:1", "CIFAR10 ε = 0.031 Carmon et al.", "PGD", 62.7),  # the base pNML wraps (004:187)
    ("pesso:1", "ImageNet ε = 4/255 Ours", "FGSM", 49.0),
    ("pesso:4", "2 iterations, step 0.015", "Accuracy", 66.89),
]


@pytest.mark.parametrize(("table", "row", "column", "value"), HAND)
def test_transcribed_cell_equals_the_paper(table, row, column, value):
    _, _, cells = layout(tables()[table])
    assert float(cells[(row, column)].value) == pytest.approx(value)


def test_every_table_is_sampled_and_laid_out_as_the_paper():
    # every table of a paper (tables of ours, such as controls, lay themselves out)
    assert {t for t, *_ in HAND} == {k for k, s in tables().items() if not s.rows}
    rows, cols, _ = layout(tables()["fidel:III"])
    assert rows[:4] == ["Untargeted CW-L2", "Untargeted CW-L2-HC", "Untargeted CW-L2-Strong",
                        "Untargeted PGD-L2"]  # fmt: skip
    assert len(rows) == 9 and cols[0] == "Standard ε1" and cols[-1] == "Combined ε5"
    rows, cols, _ = layout(tables()["madnet:1"])
    assert cols == ["CE", "MadNet", "MadNet + Adv training"]  # Mustafa et al.: references
    assert len(rows) == 10


def test_blank_and_dash_cells_have_no_published_value():
    _, _, cells = layout(tables()["pesso:1"])
    assert cells[("MNIST ε = 0.3 Standard", "Adaptive")].value == ""
    _, _, cells = layout(tables()["jakubovitz:3"])
    assert cells[("No defense", "Test accuracy")].value == ""


def test_pesso_cifar_base_sits_beside_the_model_pnml_wraps():
    """On CIFAR-10 pNML wraps Carmon et al.'s model (004:187): the measured base is printed
    beside that row (and Fig. 2a's paper point is its 62.7), Madry et al.'s is a reference."""
    from advbench.report.papers import figures

    spec = tables()["pesso:1"]
    rows, _, cells = layout(spec)
    assert "CIFAR10 ε = 0.031 Carmon et al." in rows
    assert "CIFAR10 ε = 0.031 Madry et al." not in rows
    assert spec.cell("CIFAR10 ε = 0.031 Carmon et al.", "PGD").role == "madry"
    assert cells[("CIFAR10 ε = 0.031 Carmon et al.", "Best attack")].value == "62.7"
    panel = next(p for p in figures()["pesso:fig2"].panels if p.data == "cifar10")
    base = next(s for s in panel.series if s.role == "madry")
    assert [row for _, _, row, _ in base.paper] == ["CIFAR10 ε = 0.031 Carmon et al."]
