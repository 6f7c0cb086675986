"""Level 1: the request log (recommender/request_log.py): what a client appends, what the skew
check reads back, and lines that are not request bodies named by file and line."""

import json

import pytest

from recommender import request_log
from recommender.signatures import request_inputs


def test_what_the_client_appends_reads_back_as_one_row_per_request(tmp_path):
    log = str(tmp_path / "logs" / "requests.jsonl")
    for args in (("7",), ("", ["50", "181"], 25, "F", "writer"), ("9", None, 0, "", "", ["3"], 5)):
        request_log.append(log, *request_inputs(*args))
    bodies = [json.loads(line) for line in open(log)]
    assert [b["signature_name"] for b in bodies] == ["serving_default", "recommend_with_context",
                                                     "recommend_with_context"]
    # "Not given" values (empty text, age 0, history padding) are absent, not values.
    assert request_log.read(log) == [
        {"user_id": "7"}, {"age": 25, "gender": "F", "occupation": "writer", "history": ["50", "181"]},
        {"user_id": "9"}]


def test_columnar_and_row_bodies_of_several_requests_and_a_folder_of_logs(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.jsonl").write_text(json.dumps({
        "signature_name": "recommend_with_context", "inputs": {
            "user_id": ["1", "2"], "age": [30, 0], "gender": ["M", ""], "occupation": ["", "artist"],
            "history": [["4", ""], [""]], "exclude": [[""], [""]], "k": 10}}) + "\n\n")
    (tmp_path / "logs" / "b.jsonl").write_text(json.dumps({
        "instances": [{"user_id": "Zoë", "age": 41}, "8"]}, ensure_ascii=False) + "\n")
    rows = request_log.read(str(tmp_path / "logs"))
    assert rows == [{"user_id": "1", "age": 30, "gender": "M", "history": ["4"]},
                    {"user_id": "2", "occupation": "artist"}, {"user_id": "Zoë", "age": 41},
                    {"user_id": "8"}]
    columns = request_log.columns(rows)
    assert columns["age"] == [[30], None, [41], None]
    assert columns["history"] == [["4"], None, None, None]


@pytest.mark.parametrize("line, why", [
    ("not json", "not a TF Serving request body"),
    ('["a list"]', "a JSON list, not an object"),
    ('{"signature_name": "serving_default"}', "no 'inputs' object and no 'instances' list"),
    ('{"inputs": {"user_id": ["1", "2"], "age": [3]}}', "input 'age' does not hold one value per request"),
])
def test_a_line_that_is_no_request_body_is_named_by_file_and_line(tmp_path, line, why):
    log = tmp_path / "requests.jsonl"
    log.write_text(json.dumps({"inputs": {"user_id": ["1"]}}) + "\n" + line + "\n")
    with pytest.raises(request_log.RequestLogError, match=rf"requests.jsonl, line 2: .*{why}"):
        request_log.read(str(log))


def test_a_missing_log_or_an_empty_folder_is_refused_by_name(tmp_path):
    with pytest.raises(request_log.RequestLogError, match="no request log there"):
        request_log.read(str(tmp_path / "nowhere.jsonl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(request_log.RequestLogError, match="holds no file"):
        request_log.read(str(tmp_path / "empty"))
