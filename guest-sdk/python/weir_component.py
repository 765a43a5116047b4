"""The `weir:transform` world's exports, on top of the Python SDK. `weir transform build`
componentizes an entry module that imports the author's module, then this one."""

import weir
import wit_world

weir._log = wit_world.log


def _text(value: object) -> str:
    # Rejection reasons are kept even when not UTF-8, with U+FFFD for what is not.
    return str(value).encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _outcome(record: "wit_world.Input") -> "wit_world.Outcome":
    answer = weir.run(
        weir.Record(record.data, record.partition_key, record.sequence_number, record.arrival_ms)
    )
    if isinstance(answer, weir.Reject):
        return wit_world.Outcome_Reject(wit_world.Rejected(_text(answer.code), _text(answer.message)))
    segments = [wit_world.Segment(name, value) for name, value in answer.partition]
    return wit_world.Outcome_Accept(wit_world.Accepted(segments, answer.body))


class WitWorld(wit_world.WitWorld):
    def columns(self) -> list:
        return weir.declared_columns()

    def transform_batch(self, records: list) -> list:
        outcomes = []
        for record in records:
            try:
                outcomes.append(_outcome(record))
            except Exception as error:  # the record fails; the host starts a fresh instance
                outcomes.append(wit_world.Outcome_Error(_text(f"{type(error).__name__}: {error}")))
                break
        return outcomes
