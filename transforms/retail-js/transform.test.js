// Unit tests for the transform: plain `node --test`, no WebAssembly.

import assert from "node:assert/strict";
import { test } from "node:test";
import * as weir from "./weir.js";
import "./transform.js"; // declares the transform

// 2024-03-10T15:42:07Z.
const ARRIVAL = 1_710_085_327_000;

const run = (data) => weir.run(new weir.Record(data, "", "", ARRIVAL));

const rejected = (answer, code) => weir.isReject(answer) && answer.code === code;

test("partitions by section and event time in UTC", () => {
  const answer = run('{"metadata":{"uuid":"1","section":"Books","event_time":"2024-01-01T00:30:00+01:00"},"payload":{}}');
  assert.deepEqual(answer, weir.accept({ section: "Books", dt: "2023-12-31", hr: "23" }));
});

test("falls back to arrival time without a usable event time", () => {
  for (const eventTime of ["", ',"event_time":"not a time"', ',"event_time":1710085327', ',"event_time":"2023-02-29T10:00:00Z"']) {
    const answer = run(`{"metadata":{"uuid":"1","section":"Books"${eventTime}},"payload":{}}`);
    assert.deepEqual(answer, weir.accept({ section: "Books", dt: "2024-03-10", hr: "15" }), eventTime);
  }
});

test("passes hostile sections through raw", () => {
  const answer = run('{"metadata":{"uuid":"1","section":"../x/dt=1"},"payload":{}}');
  assert.deepEqual(answer.partition[0], ["section", "../x/dt=1"]);
});

test("rejects with a code naming the problem", () => {
  const cases = {
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
    '{"metadata":{"uuid":"1","section":"A","__proto__":{}},"payload":{}}': null,
  };
  for (const [data, code] of Object.entries(cases)) {
    const answer = run(data);
    if (code === null) assert.ok(!weir.isReject(answer), data);
    else assert.ok(rejected(answer, code), `${data}: ${answer?.message ?? JSON.stringify(answer)}`);
  }
});

test("rejects data that is not UTF-8", () => {
  const answer = weir.run(new weir.Record(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d])));
  assert.ok(rejected(answer, "invalid_json"));
});

test("rejects what is JSON syntax but not a JSON value", () => {
  const event = '{"metadata":{"uuid":"1","section":SECTION},"payload":{}}';
  for (const section of ["1e400", '"\\ud800"', '"\\udc00\\ud800"', "-1" + "0".repeat(400)]) {
    const answer = run(event.replace("SECTION", section));
    assert.ok(rejected(answer, "invalid_json"), `${section}: ${answer?.message}`);
  }
  assert.ok(rejected(run("[".repeat(129) + "]".repeat(129)), "invalid_json"));
  // Out of range where the transform does not read: accepted, as the Rust SDK does.
  assert.ok(!weir.isReject(run('{"metadata":{"uuid":"1","section":"A"},"payload":{"n":1e400}}')));
  assert.deepEqual(run('{"metadata":{"uuid":"1","section":"\\ud83c\\udf89"},"payload":{}}').partition[0], ["section", "🎉"]);
});

test("parses RFC 3339 strictly", () => {
  assert.equal(weir.parseRfc3339("1970-01-01T00:00:00Z"), 0);
  assert.equal(weir.parseRfc3339("2016-12-31T23:59:60.5Z"), 1_483_228_799_999);
  assert.equal(weir.parseRfc3339("1969-12-31 23:59:59.999-00:30"), 1_799_999);
  for (const bad of ["2024-13-01T00:00:00Z", "2024-01-01T00:00:00", "２024-01-01T00:00:00Z", 0, null]) {
    assert.equal(weir.parseRfc3339(bad), null, String(bad));
  }
  assert.equal(weir.utcDate(-1), "1969-12-31");
  assert.equal(weir.utcHour(-1), "23");
});
