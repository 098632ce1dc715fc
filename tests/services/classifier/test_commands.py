import io
import json

import pytest

from npsloop.services.classifier.active import load_classifier
from npsloop.services.classifier.commands import run_classify, run_train
from npsloop.services.classifier.training import LabelledExample


def test_run_classify_writes_one_line_per_input_and_survives_bad_lines():
    infile = io.StringIO(
        '{"id": "a", "score": 9, "comment": "Fast delivery and friendly staff"}\n'
        '{"id": "b", "comment": "The app is confusing"}\n'
        "this is not json\n"
        '{"id": "c", "score": 42, "comment": "x"}\n'
        "\n"
        '{"id": "d", "score": null, "comment": null}\n'
    )
    out = io.StringIO()
    assert run_classify(infile, out, load_classifier()) == 5
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["id"] for line in lines] == ["a", "b", None, "c", "d"]
    assert lines[0]["category"] == "promoter" and lines[0]["classifier_version"] == "builtin-1.8"
    assert {"delivery_logistics", "support_experience"} <= {t["id"] for t in lines[0]["themes"]}
    assert lines[1]["category"] is None
    assert "error" in lines[2] and "line 3" in lines[2]["error"]
    assert "error" in lines[3] and "score" in lines[3]["error"]
    assert lines[4]["themes"] == []


def test_run_train_from_file_and_corrections(tmp_path, capsys):
    labels = io.StringIO(
        "\n".join(
            json.dumps(r)
            for r in [
                {
                    "comment": "Courier was late again",
                    "score": 3,
                    "themes": ["delivery_logistics"],
                    "sentiment": "negative",
                },
                {
                    "comment": "Great courier, on time",
                    "score": 10,
                    "themes": ["delivery_logistics"],
                    "sentiment": "positive",
                },
                {"comment": "Meh", "score": 7, "themes": [], "sentiment": "neutral"},
            ]
        )
    )
    corrections = [LabelledExample("Helpful agent", 9, ["support_experience"], "positive")] * 2
    version = run_train(labels_file=labels, corrections=corrections, themes=None, data_dir=tmp_path)
    assert version.startswith("trained-")
    assert load_classifier(data_dir=tmp_path).version == version
    err = capsys.readouterr().err
    assert "saved" in err
    assert "sentiment stays the built-in model's: 5 sentiment labels" in err and "needs 200" in err


def test_run_train_rejects_bad_labels(tmp_path):
    with pytest.raises(ValueError, match="labels line 1"):
        run_train(
            labels_file=io.StringIO('{"comment": "x", "sentiment": "great"}\n'),
            corrections=[],
            themes=None,
            data_dir=tmp_path,
        )
