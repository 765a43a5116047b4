//! Where an accepted record goes in the lake.

use std::borrow::Cow;

/// The answer to an accepted record: its partition, as ordered `(name, value)` segments, and
/// optionally a new body to store instead of the record's data.
///
/// The host, not the transform, turns the segments into the object path
/// `name=value/name=value/...`, escaping each value the way Spark and Hive do, so any value is
/// safe to pass through from event data: `../../etc` stays inside its partition.
///
/// What the host accepts (its defaults; an operator may change them): at least one and at most
/// 8 segments; names of 1 to 64 bytes of `[a-z0-9_]`; each escaped `name=value` at most 255
/// bytes. A partition outside those limits fails the record (it goes to the failed location);
/// it does not stop the stream.
///
/// ```
/// use weir_guest_sdk::Partition;
///
/// let partition = Partition::new()
///     .segment("section", "Books")
///     .segment("dt", "2024-03-10");
/// let segments: Vec<_> = partition.segments().collect();
/// assert_eq!(segments, [("section", "Books"), ("dt", "2024-03-10")]);
/// assert_eq!(partition.body(), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partition {
    // Names are nearly always literals: `Cow` spares an allocation per segment per record.
    segments: Vec<(Cow<'static, str>, String)>,
    body: Option<Vec<u8>>,
}

impl Partition {
    /// A partition with no segments yet; add at least one with [`segment`](Self::segment).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the segment `name=value`. Order matters: it is the order of directories in the
    /// lake.
    pub fn segment(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.segments.push((name.into(), value.into()));
        self
    }

    /// Stores `body` instead of the record's data.
    ///
    /// The body must be one JSON value in UTF-8 on one line (no raw CR or LF bytes); build it
    /// with `serde_json::to_vec`, which never writes a newline. The exported transform checks
    /// this and fails the record (a trap) if it does not hold, because the lake must only ever
    /// hold newline-delimited JSON.
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// The segments, in order, as `(name, value)`.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.segments
            .iter()
            .map(|(name, value)| (name.as_ref(), value.as_str()))
    }

    /// The replacement body, if one was set.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_segments_in_the_order_they_were_added() {
        let partition = Partition::new()
            .segment("b", "2")
            .segment(String::from("a"), String::from("1"))
            .segment("c", Cow::<str>::Borrowed("3"));
        let segments: Vec<_> = partition.segments().collect();
        assert_eq!(segments, [("b", "2"), ("a", "1"), ("c", "3")]);
    }

    #[test]
    fn keeps_values_verbatim_for_the_host_to_escape() {
        let partition = Partition::new().segment("section", "../../etc/=%");
        assert_eq!(
            partition.segments().next(),
            Some(("section", "../../etc/=%"))
        );
    }

    #[test]
    fn stores_a_replacement_body() {
        let partition = Partition::new()
            .segment("section", "x")
            .with_body(b"{\"a\":1}".to_vec());
        assert_eq!(partition.body(), Some(&b"{\"a\":1}"[..]));
    }
}
