"""The report's DenseNet memory-against-depth plot and table, from synthetic records (no bench is run)."""
from __future__ import annotations

import pytest

import zoo
from compare import report

pytestmark = pytest.mark.core


@pytest.mark.parametrize("name, depth", [
    ("densenet121", 121), ("densenet161", 161), ("densenet169", 169), ("densenet201", 201),
    # The paper's blocks (6, 12, 64, 48) count 2 * 130 + 5 = 265 layers; its name says 264.
    ("densenet264", 265),
    ("densenet_bc_100_k12", 100), ("densenet_bc_190_k40", 190), ("densenet_bc_250_k24", 250),
])
def test_depth_is_the_papers_layer_count(name, depth):
    assert report.densenet_depth(zoo.get_spec(name).config) == depth


def test_depth_counts_one_convolution_per_layer_without_bottleneck():
    # d2l's DenseNet: 16 BN-ReLU-Conv3x3 layers, stem, 3 transitions, classifier.
    assert report.densenet_depth(zoo.specs.densenet.d2l_densenet()) == 16 + 1 + 3 + 1


# CIFAR DenseNet-BC k=12 at L = 6n + 4, built as bench's --set block_config=... records them.
DEPTHS = {40: (6, 6, 6), 100: (16, 16, 16), 160: (26, 26, 26)}
# (framework, memory_efficient) -> (a, b) of peak MB = a * L**b; time per step = 10 ms * L, x1.2 when efficient.
LAWS = {("torch", False): (2.0, 1.5), ("torch", True): (3.0, 1.0), ("jax", False): (1.0, 1.8), ("jax", True): (1.0, 1.1)}


def record(framework, depth, efficient, *, peak=None, exact=True, **extra):
    a, b = LAWS[(framework, efficient)]
    return {"model": "densenet_bc_100_k12", "family": "densenet", "framework": framework, "implementation": "zoo",
            "mode": "train", "batch_size": 16, "input_size": 32, "status": "ok", "device": "cpu",
            "knobs": {"block_config": list(DEPTHS[depth]), "memory_efficient": efficient},
            "peak_memory_mb": a * depth ** b if peak is None else peak, "memory_exact": exact,
            "latency_ms": 10.0 * depth * (1.2 if efficient else 1.0), "latency_p25_ms": 1.0, "latency_p75_ms": 1.0,
            "images_per_sec": 1.0, **extra}


def synthetic() -> list[dict]:
    return [record(fw, depth, eff) for (fw, eff) in LAWS for depth in DEPTHS]


def test_exponents_are_recovered_from_a_power_law():
    groups = report.memory_depth_series(synthetic())["groups"]
    assert list(groups) == [(32, 16)]
    for (fw, efficient), (_, b) in LAWS.items():
        cells = groups[(32, 16)][fw][efficient]
        assert sorted(cells) == [40, 100, 160]
        assert report.fit_exponent([(d, r["peak_memory_mb"]) for d, r in cells.items()]) == pytest.approx(b)


def test_fit_needs_two_depths():
    assert report.fit_exponent([(100, 5.0), (100, 6.0)]) is None


def test_tables_give_exponents_and_ratios_at_each_depth():
    (title, table), = report.memory_depth_tables(synthetic(), markdown=False)
    assert "32x32, batch 16" in title
    rows = [line.split() for line in table.splitlines()]
    exponents = {(row[0], row[1]): row[3] for row in rows if len(row) == 4 and row[1] in ("False", "True")}
    assert exponents == {("torch", "False"): "1.50", ("torch", "True"): "1.00",
                         ("jax", "False"): "1.80", ("jax", "True"): "1.10"}
    ratios = {(row[0], row[1]): (row[4], row[7]) for row in rows if len(row) == 8 and row[1].isdigit()}
    # torch: 3 L / (2 L**1.5) at L = 100 is 0.15; the time ratio is 1.2 at every depth.
    assert ratios[("torch", "100")] == ("0.15", "1.20")
    assert ratios[("jax", "40")] == (f"{40 ** 1.1 / 40 ** 1.8:.2f}", "1.20")
    assert set(fw for fw, _ in ratios) == {"torch", "jax"}


def test_only_exact_peaks_are_used():
    records = synthetic()
    # A peak raised by an earlier cell of its worker would bend the fit; it must be left out and counted.
    records.append(record("torch", 160, False, peak=1e6, exact=False, batch_size=16))
    records[-1]["knobs"] = {"block_config": [36, 36, 36], "memory_efficient": False}
    series = report.memory_depth_series(records)
    assert series["left_out"] == 1
    assert sorted(series["groups"][(32, 16)]["torch"][False]) == [40, 100, 160]
    assert "memory_exact" in report.memory_depth_paragraph(records)
    assert "1 cell(s)" in report.memory_depth_paragraph(records)


def test_one_depth_gives_no_plot_or_table(tmp_path):
    records = [r for r in synthetic() if r["knobs"]["block_config"] == [16, 16, 16]]
    assert report.memory_depth_tables(records) == []
    written = report.write_report(tmp_path, records, {})
    assert not (tmp_path / "memory_vs_depth.png").exists() and all(p.name != "memory_vs_depth.png" for p in written)


def test_report_writes_the_plot_and_the_table(tmp_path):
    pytest.importorskip("matplotlib")
    # An ImageNet group beside the CIFAR one: a second panel.
    records = synthetic() + [
        {**record("torch", 40, False), "model": model, "knobs": {}, "input_size": 224, "batch_size": 4,
         "peak_memory_mb": peak}
        for model, peak in (("densenet121", 900.0), ("densenet169", 1000.0))]
    written = report.write_report(tmp_path, records, {})
    assert tmp_path / "memory_vs_depth.png" in written
    assert (tmp_path / "memory_vs_depth.png").stat().st_size > 0
    text = (tmp_path / "report.md").read_text()
    assert "against depth, 32x32, batch 16" in text and "against depth, 224x224, batch 4" in text
    assert "![memory_vs_depth](memory_vs_depth.png)" in text


def test_the_memory_axis_is_labelled_in_1_2_5_steps_around_the_peaks():
    assert report._round_ticks(228, 5717) == [200, 500, 1000, 2000, 5000, 10000]
    assert report._round_ticks(1500, 1900) == [1000, 2000]
