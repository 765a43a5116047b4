// The `weir:transform` world's exports, on top of the JavaScript SDK. `weir transform build`
// componentizes an entry module that imports the author's transform, then re-exports these.

import log from "log";
import { Record, declaredColumns, isReject, run } from "./weir.js";

globalThis[Symbol.for("weir.log")] = log;

/** The declared partition columns. */
export function columns() {
  return declaredColumns();
}

/** One outcome per record, stopping after the first that throws (an `error` outcome). */
export function transformBatch(records) {
  const outcomes = [];
  for (const input of records) {
    try {
      outcomes.push(outcome(input));
    } catch (error) {
      // The record fails; the host runs the rest in a fresh instance.
      const name = error?.name ?? "Error";
      outcomes.push({ tag: "error", val: `${name}: ${error?.message ?? String(error)}` });
      break;
    }
  }
  return outcomes;
}

function outcome(input) {
  const record = new Record(input.data, input.partitionKey, input.sequenceNumber, Number(input.arrivalMs));
  const answer = run(record);
  if (isReject(answer)) {
    return { tag: "reject", val: { code: String(answer.code), message: String(answer.reason) } };
  }
  const partition = [];
  for (const [name, value] of answer.partition) partition.push({ name, value });
  return { tag: "accept", val: { partition, body: answer.body } };
}
