import json

import numpy as np
import pytest

from services.recommender.logs import LogFormatError, read_log

GOOD = {"context": {"age": 30, "vip": True, "city": "hcm"}, "action": "a", "propensity": 0.5,
        "reward": 1}


def write(tmp_path, lines):
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line)
                              for line in lines) + "\n", encoding="utf-8")
    return path


def test_reads_rows_candidates_and_features(tmp_path):
    second = {**GOOD, "action": "b", "reward": 0,
              "actions": ["a", {"id": "b", "features": {"discount": 0.1}}, "c"]}
    log = read_log(write(tmp_path, [GOOD, "", second]))
    assert len(log) == 2
    assert log.action_ids == ["a", "b", "c"]
    assert log.candidate_mask.tolist() == [[True, True, True], [True, True, True]]
    assert log.logged_index.tolist() == [0, 1]
    assert log.action_features == {"b": {"discount": 0.1}}
    np.testing.assert_allclose(log.propensities, [0.5, 0.5])


def test_candidate_subset_masks_the_other_actions(tmp_path):
    rows = [{**GOOD, "actions": ["a"]}, {**GOOD, "action": "b", "actions": ["b", "c"]}]
    log = read_log(write(tmp_path, rows))
    assert log.candidate_mask.tolist() == [[True, False, False], [False, True, True]]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 1: not valid JSON"),
        ([1, 2], "line 1: expected a JSON object"),
        ({k: v for k, v in GOOD.items() if k != "reward"}, "line 1: reward: missing"),
        ({**GOOD, "propensity": 0}, r"line 1: propensity: expected a number in \(0, 1\]"),
        ({**GOOD, "propensity": 1.5}, "propensity"),
        ({**GOOD, "propensity": True}, "propensity"),
        ({**GOOD, "reward": "yes"}, "line 1: reward: expected a finite number"),
        ({**GOOD, "action": ""}, "line 1: action: expected a non-empty string"),
        ({**GOOD, "context": []}, "line 1: context: expected an object"),
        ({**GOOD, "context": {"tags": [1]}}, "line 1: context.tags: expected a number"),
        ({**GOOD, "actions": []}, "line 1: actions: expected a non-empty list"),
        ({**GOOD, "actions": ["b"]}, "line 1: action: 'a' is not in actions"),
        ({**GOOD, "actions": ["a", "a"]}, "duplicate"),
        ({**GOOD, "actions": [{"id": "a", "features": {"x": "big"}}]}, r"actions\[0\].features"),
        ({**GOOD, "actions": [7]}, r"actions\[0\]"),
    ],
)
def test_bad_lines_are_refused_with_line_and_field(tmp_path, line, message):
    with pytest.raises(LogFormatError, match=message):
        read_log(write(tmp_path, [line]))


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(LogFormatError, match="cannot read"):
        read_log(tmp_path / "absent.jsonl")
    with pytest.raises(LogFormatError, match="no decisions"):
        read_log(write(tmp_path, [""]))
