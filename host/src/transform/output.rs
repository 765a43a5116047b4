//! What a transform answers for one record, in a buffer reused across records.
//!
//! Both the wasm runtime (through its host imports) and native transforms fill an [`Output`];
//! the pipeline reads it before the next record clears it. Strings stay bytes until the pipeline
//! validates them, because they come straight from guest memory.

use std::ops::Range;

/// The reusable answer buffer: partition segments, an optional new body, or a rejection.
#[derive(Debug, Default)]
pub struct Output {
    bytes: Vec<u8>,
    segments: Vec<(Range<usize>, Range<usize>)>,
    body: Option<Range<usize>>,
    rejection: Option<(Range<usize>, Range<usize>)>,
}

impl Output {
    /// Forgets the previous record's answer, keeping the allocation.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.segments.clear();
        self.body = None;
        self.rejection = None;
    }

    /// Bytes held for the current record: what the output-size cap is checked against.
    pub fn held_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Appends a partition segment.
    pub fn push_segment(&mut self, name: &[u8], value: &[u8]) {
        let name = self.stash(name);
        let value = self.stash(value);
        self.segments.push((name, value));
    }

    /// Sets the replacement body (the last call wins).
    pub fn set_body(&mut self, body: &[u8]) {
        self.body = Some(self.stash(body));
    }

    /// Records a rejection (the last call wins).
    pub fn set_rejection(&mut self, code: &[u8], message: &[u8]) {
        let code = self.stash(code);
        let message = self.stash(message);
        self.rejection = Some((code, message));
    }

    /// Number of segments pushed so far.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The partition segments pushed so far, in order.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> {
        self.segments
            .iter()
            .map(|(n, v)| (&self.bytes[n.clone()], &self.bytes[v.clone()]))
    }

    /// The replacement body, if one was set.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.clone().map(|r| &self.bytes[r])
    }

    /// The rejection `(code, message)`, if one was set.
    pub fn rejection(&self) -> Option<(&[u8], &[u8])> {
        self.rejection
            .clone()
            .map(|(c, m)| (&self.bytes[c], &self.bytes[m]))
    }

    fn stash(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }
}
