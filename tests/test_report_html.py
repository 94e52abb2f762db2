"""`report --format html`: one self-contained page, checked with an HTML parser: every
contents link lands on a section, tables hold the cells the terminal table prints, figures
are inline PNGs that decode, the checklist of each attacked model is there, and nothing is
fetched from outside when the page is viewed."""

import base64
import io
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.image import imread

from advbench.cli import app
from advbench.store import open_db

sys.path.insert(0, str(Path(__file__).parent))
from test_figures import _model, _run  # noqa: E402


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.imgs, self.tags = set(), [], [], []
        self.cells: list[str] = []
        self._cell = None
        self.classes: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "img":
            self.imgs.append(a["src"])
        if tag in ("td", "th"):
            self._cell = []
        if "class" in a:
            self.classes.append(a["class"])
        for key in ("src", "href"):
            assert not (a.get(key) or "").startswith(("http:", "https:", "//")), a

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture
def store(tmp_path):
    db = open_db(tmp_path / "h.db")
    db["environments"].insert({"id": "env1", "advbench": "0.1.0", "python": "3.11",
                               "torch": "9.9.9", "torchvision": "0.0", "foolbox": "3.3.4",
                               "art": "1.20.1", "numpy": "2.0", "device": "cpu"})  # fmt: skip
    _model(db, "cnn", "ibm-cnn")
    for eps, robust in ((0.01, 9), (0.1, 4)):
        _run(db, f"fgsm-{eps}", "cnn", "fgsm", eps, robust, label="FGSM", suite="zantedeschi",
             env_id="env1")  # fmt: skip
    return tmp_path / "h.db"


def test_html_page_is_self_contained_and_complete(store, tmp_path, runner):
    out = tmp_path / "page"
    res = runner.invoke(app, ["report", "--db", str(store), "--format", "html", "--output",
                              str(out), "--table", "zantedeschi", "--figure",
                              "zantedeschi:fig3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    text = (out / "report.html").read_text()
    page = Page()
    page.feed(text)
    assert "script" not in page.tags and "link" not in page.tags
    # every contents link lands on a section of the page
    anchors = [h[1:] for h in page.links if h.startswith("#")]
    assert {"zantedeschi-1", "zantedeschi-5", "zantedeschi-fig3", "checks-cnn"} <= set(anchors)
    assert set(anchors) <= page.ids
    # the table cell the terminal prints: 4 of 10 robust at ε 0.1 beside the paper's 73.88
    assert any(c.startswith("40.0 [") and "n=10 · paper 73.88" in c for c in page.cells)
    # one inline PNG figure that decodes
    (src,) = page.imgs
    assert src.startswith("data:image/png;base64,")
    img = imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
    assert img.shape[0] > 300
    # the checklist of the attacked model, each verdict classed, and the provenance
    assert {"pass", "warn", "fail", "skip"} & set(page.classes)
    body = "".join(page.text)
    assert "Evaluation checklist" in body and "monotone" in body
    assert "advbench attack --model cnn --suite zantedeschi --scale smoke --seed 0" in body
    assert "advbench train --dataset mnist-5k --arch ibm-cnn --name cnn" in body
    assert "torch 9.9.9" in body and "advbench report --table zantedeschi:1" in body


def test_html_needs_an_output_directory(store, runner):
    res = runner.invoke(app, ["report", "--db", str(store), "--format", "html"])
    assert res.exit_code == 2 and "--output DIR" in res.output


def test_the_default_page_is_about_the_store_in_hand(store, tmp_path, runner):
    """No --table or --figure: the page opens with the store's own models (summary cells,
    curves, provenance), shows only the papers whose suite it ran (zantedeschi here), names
    the others in one line with the command that fills them, and stays under 1 MB."""
    out = tmp_path / "page"
    res = runner.invoke(app, ["report", "--db", str(store), "--format", "html", "--output",
                              str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    text = (out / "report.html").read_text()
    assert len(text.encode()) < 1_000_000
    page = Page()
    page.feed(text)
    body = "".join(page.text)
    assert body.index("Your models") < body.index("zantedeschi:1")
    assert "your-models" in page.ids and "#your-models" in page.links
    # the summary's cell of the FGSM ε 0.1 run: 4 of 10 robust with its Wilson bounds
    assert "40.0 [17–69]" in page.cells
    assert "curves: accuracy against ε" in body and len(page.imgs) >= 2
    assert "Papers whose suite this store has not run: fidel, madnet, jakubovitz, pesso" in body
    assert "fidel:III" not in body and "madnet:1" not in body
    assert "advbench attack --model cnn --suite zantedeschi" in body  # provenance
