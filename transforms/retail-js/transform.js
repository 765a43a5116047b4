// The retail website's transform in JavaScript: the same decisions as transforms/retail.
//
// An event is valid when `metadata` and `payload` are JSON objects and `metadata.uuid` and
// `metadata.section` are non-empty strings. It goes to `section=<section>/dt=<YYYY-MM-DD>/hr=<HH>`,
// the day and hour in UTC from `metadata.event_time` when that is an RFC 3339 string, else from
// the record's arrival time. Otherwise it is rejected: `invalid_json`, `invalid_event` (naming
// the field) or `empty_field`.

import * as weir from "./weir.js";

export default weir.transform({ columns: ["section", "dt", "hr"] }, (record) => {
  const event = record.json();
  if (!weir.isObject(event)) return weir.reject("invalid_event", "the event must be a JSON object");
  const metadata = weir.field(event, "metadata", "object");
  weir.field(event, "payload", "object");
  const uuid = weir.field(metadata, "uuid", "string", { path: "metadata" });
  const section = weir.field(metadata, "section", "string", { path: "metadata" });
  for (const [name, value] of [["uuid", uuid], ["section", section]]) {
    if (!value) return weir.reject("empty_field", `metadata.${name} must be a non-empty string`);
  }
  const eventTime = weir.field(metadata, "event_time", "any", { path: "metadata", required: false });
  const millis = weir.parseRfc3339(eventTime) ?? record.arrivalMs;
  return weir.accept({ section, dt: weir.utcDate(millis), hr: weir.utcHour(millis) });
});
