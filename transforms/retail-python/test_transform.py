"""Unit tests for the transform: plain pytest, no WebAssembly (`python -m pytest`)."""

import weir

import transform  # noqa: F401  (declares the transform)

# 2024-03-10T15:42:07Z.
ARRIVAL = 1_710_085_327_000


def run(data: str) -> "weir.Accept | weir.Reject":
    return weir.run(weir.Record(data.encode(), arrival_ms=ARRIVAL))


def test_partitions_by_section_and_event_time_in_utc():
    answer = run('{"metadata":{"uuid":"1","section":"Books","event_time":"2024-01-01T00:30:00+01:00"},"payload":{}}')
    assert answer == weir.accept(section="Books", dt="2023-12-31", hr="23")


def test_falls_back_to_arrival_time_without_a_usable_event_time():
    for event_time in ["", ',"event_time":"not a time"', ',"event_time":1710085327', ',"event_time":"2023-02-29T10:00:00Z"']:
        answer = run(f'{{"metadata":{{"uuid":"1","section":"Books"{event_time}}},"payload":{{}}}}')
        assert answer == weir.accept(section="Books", dt="2024-03-10", hr="15"), event_time


def test_passes_hostile_sections_through_raw():
    answer = run('{"metadata":{"uuid":"1","section":"../x/dt=1"},"payload":{}}')
    assert answer.partition[0] == ("section", "../x/dt=1")


def test_rejects_with_a_code_naming_the_problem():
    cases = {
        "not json": "invalid_json",
        '{"metadata":{}} trailing': "invalid_json",
        '{"a":NaN}': "invalid_json",
        "\ufeff{}": "invalid_json",
        "[]": "invalid_event",
        '{"payload":{}}': "invalid_event",
        '{"metadata":{"uuid":"1","section":"A"},"payload":[]}': "invalid_event",
        '{"metadata":{"uuid":"1","section":"A","section":"B"},"payload":{}}': "invalid_event",
        '{"metadata":{"uuid":1,"section":"A"},"payload":{}}': "invalid_event",
        '{"metadata":{"uuid":"","section":"A"},"payload":{}}': "empty_field",
    }
    for data, code in cases.items():
        answer = run(data)
        assert isinstance(answer, weir.Reject) and answer.code == code, (data, answer)


def test_rejects_data_that_is_not_utf8():
    answer = weir.run(weir.Record(b'{"metadata":{"uuid":"\xff"}}'))
    assert isinstance(answer, weir.Reject) and answer.code == "invalid_json"


def test_rejects_what_is_json_syntax_but_not_a_json_value():
    event = '{"metadata":{"uuid":"1","section":SECTION},"payload":{}}'
    for section in ['1e400', '"\\ud800"', "-1" + "0" * 400]:
        answer = run(event.replace("SECTION", section))
        assert isinstance(answer, weir.Reject) and answer.code == "invalid_json", (section, answer)
    # Out of range where the transform does not read: accepted, as the Rust SDK does.
    assert isinstance(run('{"metadata":{"uuid":"1","section":"A"},"payload":{"n":1e400}}'), weir.Accept)
    assert run('{"metadata":{"uuid":"1","section":"\\ud83c\\udf89"},"payload":{}}').partition[0] == ("section", "🎉")
