"""The retail website's transform in Python: the same decisions as transforms/retail.

An event is valid when `metadata` and `payload` are JSON objects and `metadata.uuid` and
`metadata.section` are non-empty strings. It goes to `section=<section>/dt=<YYYY-MM-DD>/hr=<HH>`,
the day and hour in UTC from `metadata.event_time` when that is an RFC 3339 string, else from
the record's arrival time. Otherwise it is rejected: `invalid_json`, `invalid_event` (naming the
field) or `empty_field`.
"""

import weir


@weir.transform(columns=["section", "dt", "hr"])
def route(record: weir.Record):
    event = record.json()
    if not isinstance(event, dict):
        return weir.reject("invalid_event", "the event must be a JSON object")
    metadata = weir.field(event, "metadata", dict)
    weir.field(event, "payload", dict)
    uuid = weir.field(metadata, "uuid", str, "metadata")
    section = weir.field(metadata, "section", str, "metadata")
    for name, value in (("uuid", uuid), ("section", section)):
        if not value:
            return weir.reject("empty_field", f"metadata.{name} must be a non-empty string")
    millis = weir.parse_rfc3339(weir.field(metadata, "event_time", required=False))
    if millis is None:
        millis = record.arrival_ms
    return weir.accept(section=section, dt=weir.utc_date(millis), hr=weir.utc_hour(millis))
