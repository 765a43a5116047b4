//! The retail website's event, as far as the transform reads it.
//!
//! Parsed straight from the record's bytes into borrowed, typed fields: no JSON tree is built
//! and the payload is skipped without being stored, which matters at ~150k events/s.

use std::{borrow::Cow, fmt, marker::PhantomData};

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use weir_guest_sdk::{Record, Rejection, Timestamp};

/// Validates an event and returns what its partition is made of: its section, and when it
/// happened (`metadata.event_time`), else when it arrived.
pub(crate) fn route<'a>(record: &'a Record<'_>) -> Result<(String, Timestamp), Rejection> {
    let event: Event<'a> = record.parse()?;
    let metadata = event.metadata;
    require_non_empty("metadata.uuid", &metadata.uuid)?;
    require_non_empty("metadata.section", &metadata.section)?;
    let time = metadata.event_time.0.unwrap_or(record.arrival());
    Ok((metadata.section.into_owned(), time))
}

fn require_non_empty(field: &str, value: &str) -> Result<(), Rejection> {
    if value.is_empty() {
        Err(Rejection::new(
            "empty_field",
            format!("{field} must be a non-empty string"),
        ))
    } else {
        Ok(())
    }
}

/// An event: `{"metadata": {...}, "payload": {...}}`; other top-level fields are ignored.
#[derive(Debug)]
pub(crate) struct Event<'a> {
    pub(crate) metadata: Metadata<'a>,
}

/// The event's routing information.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Metadata<'a> {
    #[serde(borrow)]
    pub(crate) uuid: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) section: Cow<'a, str>,
    /// When the event happened, if it says so in RFC 3339.
    #[serde(default)]
    pub(crate) event_time: EventTime,
}

impl<'de> Deserialize<'de> for Event<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Fields<'a> {
            #[serde(borrow, deserialize_with = "object")]
            metadata: Metadata<'a>,
            // Required and checked to be an object, then forgotten.
            #[serde(rename = "payload")]
            _payload: AnyObject,
        }

        let fields: Fields<'de> = object(deserializer)?;
        Ok(Self {
            metadata: fields.metadata,
        })
    }
}

/// Deserializes `T` from a JSON object and nothing else.
///
/// serde_json also fills a struct from an array of its fields in order (`["145", "Books"]` would
/// pass for a `Metadata`), which the event's contract does not allow.
fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_map(ObjectVisitor(PhantomData))
}

/// Any JSON object, skipped entry by entry without storing anything.
#[derive(Debug)]
struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyObjectVisitor;

        impl<'de> Visitor<'de> for AnyObjectVisitor {
            type Value = AnyObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }

        deserializer.deserialize_map(AnyObjectVisitor)
    }
}

/// `metadata.event_time`: the instant if the value is an RFC 3339 string, otherwise `None`.
///
/// Any JSON value is accepted: an event time that is missing, of another type or not RFC 3339
/// makes the transform fall back to the arrival time rather than reject the event.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct EventTime(pub(crate) Option<Timestamp>);

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EventTimeVisitor)
    }
}

struct EventTimeVisitor;

impl<'de> Visitor<'de> for EventTimeVisitor {
    type Value = EventTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<EventTime, E> {
        Ok(EventTime(Timestamp::parse_rfc3339(text)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<EventTime, E> {
        Ok(EventTime(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<EventTime, E> {
        Ok(EventTime(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<EventTime, E> {
        Ok(EventTime(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<EventTime, E> {
        Ok(EventTime(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<EventTime, E> {
        Ok(EventTime(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventTime, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(EventTime(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventTime, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(EventTime(None))
    }
}

#[cfg(test)]
mod tests {
    use weir_guest_sdk::{Record, Rejection};

    use super::*;

    fn parse(data: &str) -> Result<Event<'_>, Rejection> {
        Record::new(data.as_bytes()).parse()
    }

    fn event_time(value: &str) -> EventTime {
        let data = format!(
            r#"{{"metadata":{{"uuid":"1","section":"s","event_time":{value}}},"payload":{{}}}}"#
        );
        parse(&data).expect("valid event").metadata.event_time
    }

    #[test]
    fn borrows_metadata_strings_without_escapes() {
        let event = parse(r#"{"metadata":{"uuid":"145","section":"Books"},"payload":{}}"#)
            .expect("valid event");
        assert!(matches!(event.metadata.uuid, Cow::Borrowed("145")));
        assert!(matches!(event.metadata.section, Cow::Borrowed("Books")));
    }

    #[test]
    fn skips_any_payload_object_and_unknown_fields() {
        let event = parse(
            r#"{"extra":[1,{"a":null}],"metadata":{"uuid":"1","section":"s","x":{"y":[]}},
                "payload":{"menu":[{"v":"New"}],"n":1.5e3,"t":true,"z":null}}"#,
        )
        .expect("valid event");
        assert_eq!(event.metadata.section, "s");
    }

    #[test]
    fn reads_an_rfc_3339_event_time() {
        let expected = Timestamp::parse_rfc3339("2024-03-10T15:42:07Z");
        assert_eq!(event_time(r#""2024-03-10T15:42:07Z""#), EventTime(expected));
        // Escapes are decoded before the time is parsed.
        assert_eq!(
            event_time(r#""2024-03-10T15:42:07\u005a""#),
            EventTime(expected)
        );
    }

    #[test]
    fn ignores_an_event_time_of_any_other_kind() {
        for value in [
            r#""yesterday""#,
            r#""""#,
            "1710085327000",
            "-1",
            "1.5",
            "true",
            "null",
            r#"["2024-03-10T15:42:07Z"]"#,
            r#"{"at":"2024-03-10T15:42:07Z"}"#,
        ] {
            assert_eq!(event_time(value), EventTime(None), "{value}");
        }
    }

    #[test]
    fn rejects_arrays_in_place_of_objects() {
        for (data, path) in [
            (r#"[{"uuid":"1","section":"s"},{}]"#, ""),
            (r#"{"metadata":["1","s"],"payload":{}}"#, "metadata: "),
            (
                r#"{"metadata":{"uuid":"1","section":"s"},"payload":[]}"#,
                "payload: ",
            ),
        ] {
            let rejection = parse(data).expect_err("an array is not an object");
            assert_eq!(rejection.code(), "invalid_event");
            assert!(
                rejection.message().starts_with(&format!(
                    "{path}invalid type: sequence, expected a JSON object"
                )),
                "{rejection}"
            );
        }
    }
}
