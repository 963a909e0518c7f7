"""svdc.runner.Stage / run_stage: a per-item stage (module-level functions, as another package would write one)
runs on 2 local worker processes into <folder>/<id>.json, loads its state once per worker, resumes by its params'
hash, records bad items without retrying them, and refuses a second stage under a taken name."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

from svdc.runner import Stage, StageTask, read_results, register_task, run_stage


@dataclass(frozen=True)
class Scale:
    factor: float = 2.0

    def validate(self) -> None:
        if self.factor <= 0:
            raise ValueError(f"factor: expected a number > 0, got {self.factor!r}")


def load_offset(params: Scale) -> dict:
    return {"offset": 100, "pid": os.getpid()}


def scale_item(state: dict, item: dict, params: Scale) -> dict:
    if item["n"] < 0:
        raise ValueError(f"n: expected a number >= 0, got {item['n']}")
    if item["n"] == 13:
        return ["not", "a", "dict"]
    return {"id": item["id"], "value": item["n"] * params.factor + state["offset"], "ratio": float("nan"),
            "loaded_in": state["pid"]}


def summarize(output: dict) -> dict:
    return {"value": output["value"]}


SCALE = Stage(name="test_scale", process=scale_item, load=load_offset, columns={"n": "int", "note": "str"},
              required=("n",), folder="scaled", params_type=Scale, summary=summarize)


def _read(out, i):
    return json.loads((out / "scaled" / f"{i}.json").read_text())


def test_stage_on_two_workers_resumes_and_records_bad_items(tmp_path):
    items = [{"id": f"item-{k}", "n": k} for k in range(5)] + [{"id": "negative", "n": -1, "note": "bad"},
                                                             {"id": "odd", "n": 13}]
    out = tmp_path / "out"
    summary = run_stage(SCALE, items, out, Scale(3.0), workers=2, retries=2, progress=False)
    assert (summary.ok, summary.failed) == (5, 2), summary.results
    for k in range(5):
        doc = _read(out, f"item-{k}")
        assert doc["value"] == 3.0 * k + 100 and doc["ratio"] is None  # NaN written as null
        assert summary.results[f"item-{k}"]["value"] == doc["value"]
    with open(out / "results.jsonl") as f:
        attempts = [json.loads(line) for line in f]
    workers = {a["worker"] for a in attempts}
    assert len([a for a in attempts if "load_seconds" in a]) == len(workers)  # loaded once in each worker
    for k in range(5):  # ... and the state used was that worker's
        assert summary.results[f"item-{k}"]["worker"].endswith(f":{_read(out, f'item-{k}')['loaded_in']}")
    bad = summary.results["negative"]
    assert bad["status"] == "failed" and "n: expected a number >= 0" in bad["error"] and bad["attempt"] == 1
    odd = summary.results["odd"]
    assert "returned list, expected a dict" in odd["error"] and odd["attempt"] == 3  # not bad input: retried
    assert sorted(os.listdir(out / "scaled")) == [f"item-{k}.json" for k in range(5)]
    assert sorted(os.listdir(out)) == ["results.jsonl", "scaled"]  # no staging folder left

    again = run_stage(SCALE, items[:5], out, Scale(3.0), workers=2, progress=False)
    assert (again.ok, again.skipped) == (0, 5)
    changed = run_stage(SCALE, items[:2], out, Scale(0.5), workers=1, progress=False)
    assert (changed.ok, changed.skipped) == (2, 0) and _read(out, "item-1")["value"] == 100.5
    assert read_results(out)["item-1"]["value"] == 100.5


def test_stage_checks(tmp_path):
    with pytest.raises(ValueError, match="factor: expected a number > 0"):
        run_stage(SCALE, [{"id": "a", "n": 1}], tmp_path, Scale(0.0), progress=False)
    with pytest.raises(TypeError, match="params: expected a .*Scale, got dict"):
        run_stage(SCALE, [{"id": "a", "n": 1}], tmp_path, {"factor": 2}, progress=False)
    with pytest.raises(ValueError, match=r"row 1: missing required column\(s\) \['n'\]"):
        run_stage(SCALE, [{"id": "a", "note": "x"}], tmp_path, progress=False)
    assert not os.listdir(tmp_path)  # refused before anything was written
    register_task(StageTask(SCALE))  # the same stage again: fine
    other = Stage(name="test_scale", process=summarize)
    with pytest.raises(ValueError, match="workflow 'test_scale' is already registered"):
        register_task(StageTask(other))
    with pytest.raises(ValueError, match="'curation' is already registered"):
        register_task(StageTask(Stage(name="curation", process=summarize)))
    with pytest.raises(ValueError, match="stage.folder: expected a relative folder name"):
        StageTask(Stage(name="x", process=summarize, folder="../up"))
    with pytest.raises(ValueError, match="column 'n': expected a type among"):
        register_task(StageTask(Stage(name="y", process=summarize, columns={"n": "number"})))
