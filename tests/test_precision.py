"""Precision configurations and `--precision auto`: parsing, the CPU classes, the choice from a record,
a cache that keeps configurations apart, and the timer naming what ran."""

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO
from medsam_laptop import cli
from medsam_laptop.architectures import DEFAULT_MODEL
from medsam_laptop.engines.compiled_cache import cache_namespace
from medsam_laptop.engines.cpu import cpu_class
from medsam_laptop.engines.openvino_engine import OpenVINOEngine
from medsam_laptop.engines.precision import (
    FAST_START_MAX_CASES,
    Configuration,
    PrecisionError,
    choose,
    int8_sha256s,
    read_record,
    resolve,
)
from medsam_laptop.io.case_files import few_encoder_calls

WEIGHTS = REPO / "weights" / "litemedsam"
ZEN4 = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni"}
SAPPHIRE_RAPIDS = ZEN4 | {"amx_bf16", "amx_int8", "amx_tile"}


def _entry(name: str, passed: bool, encode_s: float, decode_s: float) -> dict:
    return {
        "configuration": name,
        "speed": {"encode_s": encode_s, "decode_s_per_box": decode_s},
        "gate": {"passed": passed},
    }


def _int8(entry: dict) -> bool:
    """Whether a record entry's configuration runs the INT8 encoder."""
    return Configuration.parse(entry["configuration"]).encoder_is_int8


def test_configuration_names():
    assert Configuration.parse("int8") == Configuration("int8", "f32")
    assert Configuration.parse("bf16") == Configuration("bf16", "bf16")
    assert Configuration.parse("int8-bf16").name == "int8-bf16"
    assert Configuration.parse("int8-bf16").encoder_file == "encoder-int8.xml"
    assert Configuration.parse("int8-bf16").encoder_hint == "f32"
    assert Configuration.parse("bf16-f32").encoder_file == "encoder.xml"
    mixed = Configuration.parse("int8+bf16-f32")
    assert (mixed.encoder_file, mixed.encoder_hint, mixed.decoder_hint) == ("encoder-int8.xml", "bf16", "f32")
    fast = Configuration.parse("bf16-f32:fast-start")
    assert fast == Configuration("bf16", "f32", fast_start=True) and fast.name == "bf16-f32:fast-start"
    assert Configuration.parse("bf16:fast-start").name == "bf16-bf16:fast-start"
    assert (
        fast.compile_options == {"SNIPPETS_MODE": "DISABLE"} and Configuration.parse("bf16-f32").compile_options == {}
    )
    for bad in (
        *("f64", "int8-int8", "bf16-", "auto-f32", "", "int8+f32-f32", "int8+int8-f32", "bf16+f16-f32"),
        *("bf16-f32:", "bf16-f32:fast", "auto:fast-start", ":fast-start"),
    ):
        with pytest.raises(PrecisionError):
            Configuration.parse(bad)


def test_cpu_classes_from_injected_capabilities():
    assert cpu_class({"BF16", "FP16", "INT8"}, SAPPHIRE_RAPIDS) == "amx"
    assert cpu_class({"BF16", "INT8"}, ZEN4) == "avx512-bf16"
    # flags alone are not enough: OpenVINO must also offer bf16 on the CPU
    assert cpu_class({"INT8"}, ZEN4) == "avx512"
    assert cpu_class({"INT8"}, {"avx2", "avx512f"}) == "avx512"
    assert cpu_class({"INT8"}, {"avx2", "fma"}) == "avx2"
    assert cpu_class(set(), {"sse4_2"}) == "other"


def test_auto_picks_f32_when_nothing_faster_has_passed():
    record = {
        "classes": {
            "avx2": {
                "configurations": [
                    _entry("f32-f32", True, 0.56, 0.040),
                    _entry("int8-f32", False, 0.29, 0.040),  # faster, but failed the gate
                    _entry("f16-f16", True, 0.94, 0.063),  # passed, but slower than f32
                ]
            }
        }
    }
    assert choose(record, "avx2") == Configuration()
    assert choose(record, "amx") == Configuration()  # a class with no record
    assert choose({"classes": {}}, "avx2") == Configuration()


def test_auto_picks_the_fastest_passing_configuration_whose_files_exist(tmp_path):
    record = {
        "classes": {
            "amx": {
                "configurations": [
                    _entry("f32-f32", True, 0.70, 0.071),
                    _entry("bf16-f32", True, 0.32, 0.071),
                    _entry("int8-bf16", True, 0.25, 0.033) | {"int8_files": {"encoder-int8.bin": "a" * 64}},
                ]
            }
        }
    }
    assert choose(record, "amx") == Configuration("int8", "bf16")
    (tmp_path / "encoder.xml").touch()
    (tmp_path / "int8.json").write_text(json.dumps({"files": {"encoder-int8.bin": "a" * 64}}))
    assert choose(record, "amx", tmp_path) == Configuration("bf16", "f32")  # the INT8 encoder's files are missing
    (tmp_path / "encoder-int8.xml").touch()
    assert choose(record, "amx", tmp_path) == Configuration("int8", "bf16")


def test_auto_takes_an_int8_pass_only_for_the_int8_encoder_it_measured(tmp_path):
    measured = {"encoder-int8.xml": "a" * 64, "encoder-int8.bin": "b" * 64}
    entry = _entry("int8+bf16-f32", True, 0.22, 0.033) | {"int8_files": measured}
    record = {"classes": {"amx": {"configurations": [_entry("bf16-f32", True, 0.32, 0.033), entry]}}}
    for name in ("encoder.xml", "encoder-int8.xml"):
        (tmp_path / name).touch()
    (tmp_path / "int8.json").write_text(json.dumps({"files": measured}))
    assert choose(record, "amx", tmp_path) == Configuration("int8+bf16", "f32")
    (tmp_path / "int8.json").write_text(json.dumps({"files": measured | {"encoder-int8.bin": "c" * 64}}))
    assert choose(record, "amx", tmp_path) == Configuration("bf16", "f32")  # re-quantized since
    (tmp_path / "int8.json").unlink()
    del entry["int8_files"]
    assert choose(record, "amx", tmp_path) == Configuration("bf16", "f32")  # neither side names the bytes


def test_auto_takes_the_fast_start_variant_only_for_few_encoder_calls_and_only_if_it_passed():
    fast = Configuration("bf16", "f32", fast_start=True)
    entries = [
        _entry("f32-f32", True, 0.29, 0.029),
        _entry("bf16-f32", True, 0.114, 0.028),
        _entry("bf16-f32:fast-start", True, 0.127, 0.028),  # slower per call: never the pick for many calls
        _entry("f32-f32:fast-start", True, 0.30, 0.029),
    ]
    record = {"classes": {"amx": {"configurations": entries}}}
    assert choose(record, "amx") == Configuration("bf16", "f32")
    assert choose(record, "amx", few_encoder_calls=True) == fast
    entries[2]["gate"]["passed"] = False
    assert choose(record, "amx", few_encoder_calls=True) == Configuration("bf16", "f32")
    entries[1]["gate"]["passed"] = False  # the variant of a configuration that did not pass is not taken
    entries[2]["gate"]["passed"] = True
    assert choose(record, "amx", few_encoder_calls=True) == Configuration("f32", "f32", fast_start=True)
    assert choose(record, "amx") == Configuration()


def test_few_encoder_calls_means_a_few_2d_cases():
    two_d = [Path(f"2DBox_US_{i}.npz") for i in range(FAST_START_MAX_CASES + 1)]
    assert few_encoder_calls(two_d[:1]) and few_encoder_calls(two_d[:-1])
    assert not few_encoder_calls(two_d)
    assert not few_encoder_calls([Path("3DBox_CT_1.npz")])
    assert not few_encoder_calls([two_d[0], Path("3DBox_PET_1.npz")])


def test_resolve_reads_the_committed_record_with_injected_capabilities():
    record = read_record(WEIGHTS)
    machines = {
        "amx": (SAPPHIRE_RAPIDS, {"BF16", "INT8"}),
        "avx512-bf16": (ZEN4, {"BF16", "INT8"}),
        "avx512": ({"avx2", "avx512f"}, {"INT8"}),
        "avx2": ({"avx2"}, {"INT8"}),
    }
    assert set(record["classes"]) <= set(machines)
    for cls, (flags, capabilities) in machines.items():
        configuration, how = resolve("auto", WEIGHTS, capabilities, flags)
        assert how == f"auto on {cls}"
        entries = record["classes"].get(cls, {}).get("configurations", [])
        passed = {
            e["configuration"]: e["speed"]
            for e in entries
            if e["gate"]["passed"] and (not _int8(e) or e.get("int8_files") == int8_sha256s(WEIGHTS))
        }
        few, _ = resolve("auto", WEIGHTS, capabilities, flags, few_encoder_calls=True)
        whole_runs = [n for n in passed if not Configuration.parse(n).fast_start]
        if not whole_runs:
            assert configuration == Configuration()
            continue
        fastest = min(whole_runs, key=lambda n: passed[n]["encode_s"] + passed[n]["decode_s_per_box"])
        assert configuration == Configuration.parse(fastest)
        assert few.name == (f"{fastest}:fast-start" if f"{fastest}:fast-start" in passed else fastest)
    assert resolve("int8", WEIGHTS) == (Configuration("int8", "f32"), "int8")
    gated_here = [e for e in record["classes"]["avx512-bf16"]["configurations"] if _int8(e)]
    assert gated_here and all(e["int8_files"] == int8_sha256s(WEIGHTS) for e in gated_here)


def test_every_recorded_class_names_its_measurement():
    record = json.loads((WEIGHTS / "precision.json").read_text())
    for cls, entry in record["classes"].items():
        assert entry["cpu"] and entry["command"] and entry["measured"], cls
        names = [e["configuration"] for e in entry["configurations"]]
        assert "f32-f32" in names, cls  # the baseline every choice is timed against
        for e in entry["configurations"]:
            if _int8(e):
                assert set(e["int8_files"]) == {"encoder-int8.xml", "encoder-int8.bin"}, (cls, e)
            gate = e["gate"]
            if e["configuration"] != "f32-f32":
                within = (
                    gate["mean_drop"] <= record["gate"]["mean_drop_max"]
                    and gate["worst_drop"] <= record["gate"]["group_drop_max"]
                )
                assert gate["passed"] == within, (cls, e)


def test_cache_namespaces_differ_by_graph_and_settings():
    names = {
        cache_namespace(WEIGHTS, graph, settings)
        for graph in ("encoder.xml", "encoder-int8.xml", "decoder.xml")
        for settings in ("f32", "bf16", "f16", "bf16-fast-start")
    }
    assert len(names) == 12
    assert cache_namespace(WEIGHTS, "decoder.xml", "f32") == cache_namespace(WEIGHTS, "decoder.xml", "f32")


def test_cache_namespace_follows_the_graph_bytes(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "encoder.xml").write_text("a")
    (model / "encoder.bin").write_text("b")
    before = cache_namespace(model, "encoder.xml", "f32")
    (model / "encoder.bin").write_text("bb")
    assert cache_namespace(model, "encoder.xml", "f32") != before


def _precision_benchmark():
    spec = importlib.util.spec_from_file_location("precision_benchmark", REPO / "benchmarks" / "precision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gate_scores_are_kept_per_graph_bytes(tmp_path):
    """benchmarks/precision.py reuses a configuration's per-case scores only for the graphs that made them."""
    result_name = _precision_benchmark().result_name
    model = tmp_path / "m"
    model.mkdir()
    for name in ("encoder.xml", "encoder.bin", "encoder-int8.xml", "encoder-int8.bin", "decoder.xml", "decoder.bin"):
        (model / name).write_text(name)
    before = {c: result_name(c, model) for c in ("f32-f32", "bf16-f32", "int8+bf16-f32")}
    assert before["f32-f32"].startswith("f32-f32-") and before["int8+bf16-f32"].startswith("int8+bf16-f32-")
    assert before["f32-f32"].rpartition("-")[2] == before["bf16-f32"].rpartition("-")[2]  # the same graphs
    assert before["int8+bf16-f32"].rpartition("-")[2] != before["f32-f32"].rpartition("-")[2]
    (model / "encoder.bin").write_text("exported again")
    assert result_name("bf16-f32", model) != before["bf16-f32"]
    assert result_name("int8+bf16-f32", model) == before["int8+bf16-f32"]
    (model / "decoder.bin").write_text("exported again")
    assert result_name("int8+bf16-f32", model) != before["int8+bf16-f32"]
    (model / "encoder-int8.bin").unlink()
    with pytest.raises(SystemExit, match="encoder-int8.bin is missing"):
        result_name("int8+bf16-f32", model)


def _predict(tmp_path, cases_dir, precision: str, outputs, *options: str):
    inputs = tmp_path / "in"
    inputs.mkdir(exist_ok=True)
    shutil.copy(cases_dir / "imgs" / "2DBox_US_stubus_01.npz", inputs)
    return cli.main(["predict", "-i", str(inputs), "-o", str(outputs), "--precision", precision, *options])


def test_switching_precision_over_one_cache_folder(tmp_path, cases_dir):
    """Every precision this CPU runs, one after another into the same output folder and cache."""
    import openvino as ov

    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    precisions = [
        "f32",
        "f32:fast-start",
        "int8",
        *(["bf16", "bf16-f32", "bf16-f32:fast-start", "int8-bf16", "int8+bf16-f32"] if "BF16" in capabilities else []),
    ]
    outputs = tmp_path / "out"
    for precision in [*precisions, "f32", *precisions]:  # second round: every blob comes from the cache
        assert _predict(tmp_path, cases_dir, precision, outputs, "--model", "litemedsam") == 0, precision
    cache = outputs / ".openvino_cache"
    configurations = [Configuration.parse(p) for p in precisions]
    assert len([p for p in cache.iterdir() if p.is_dir()]) == len(
        {(c.encoder_file, c.encoder_hint, c.fast_start) for c in configurations}
    ) + len({(c.decoder_hint, c.fast_start) for c in configurations})
    with open(outputs / "efficiency_timer.csv") as f:
        ran = [row["configuration"] for row in csv.DictReader(f)]
    assert ran == [f"litemedsam {Configuration.parse(p).name}" for p in [*precisions, "f32", *precisions]]


def test_timer_names_the_configuration_auto_ran(tmp_path, cases_dir, capsys):
    """With no --model the default model runs, in the configuration its own record chooses."""
    outputs = tmp_path / "out"
    assert _predict(tmp_path, cases_dir, "auto", outputs) == 0  # one 2D case: few encoder calls
    configuration, how = resolve("auto", REPO / "weights" / DEFAULT_MODEL, few_encoder_calls=True)
    with open(outputs / "efficiency_timer.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["configuration"] == f"{DEFAULT_MODEL} {configuration.name} ({how})"
    assert f"{DEFAULT_MODEL} {configuration.name} ({how})" in capsys.readouterr().err


def _runtime_precisions(request) -> set[str]:
    model = request.get_compiled_model().get_runtime_model()
    return {
        op.get_rt_info()["runtimePrecision"].astype(str)
        for op in model.get_ops()
        if "runtimePrecision" in op.get_rt_info()
    }


def test_engine_compiles_the_configuration_it_names():
    import openvino as ov

    bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    engine = OpenVINOEngine(WEIGHTS, "int8-bf16", cache_dir=None)
    assert "i8" in _runtime_precisions(engine._encoder) and "bf16" not in _runtime_precisions(engine._encoder)
    assert ("bf16" in _runtime_precisions(engine._decoder)) == bf16
    mixed = OpenVINOEngine(WEIGHTS, "int8+bf16-f32", cache_dir=None)
    assert "i8" in _runtime_precisions(mixed._encoder)
    assert ("bf16" in _runtime_precisions(mixed._encoder)) == bf16
    assert "bf16" not in _runtime_precisions(mixed._decoder)
    f32 = OpenVINOEngine(WEIGHTS, "f32", cache_dir=None)
    assert not {"i8", "bf16"} & (_runtime_precisions(f32._encoder) | _runtime_precisions(f32._decoder))


def _layer_types(request) -> set[str]:
    return {
        op.get_rt_info()["layerType"].astype(str) for op in request.get_compiled_model().get_runtime_model().get_ops()
    }


def test_fast_start_compiles_both_graphs_without_snippets(tmp_path):
    """Snippets are the fused subgraphs ("Subgraph" layers) whose code generation the fast start skips."""
    default = OpenVINOEngine(WEIGHTS, "f32", cache_dir=tmp_path)
    assert "Subgraph" in _layer_types(default._encoder) and "Subgraph" in _layer_types(default._decoder)
    for _ in range(2):  # compiled, then loaded from the cache
        fast = OpenVINOEngine(WEIGHTS, "f32:fast-start", cache_dir=tmp_path)
        assert "Subgraph" not in _layer_types(fast._encoder) | _layer_types(fast._decoder)
