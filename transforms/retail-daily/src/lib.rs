//! The retail transform with the hour dropped: events partitioned by site section and UTC day
//! only. It is the "Changing the partitioning" example of `docs/transforms.md`, kept built so
//! that the tests and the acceptance test change a lake's partitioning with real events.
//! Validation is the retail transform's own: its `event.rs`, compiled in here.
//!
//! Build the module with
//! `cargo build --release --target wasm32-wasip1 -p weir-transform-retail-daily`.

#[path = "../../retail/src/event.rs"]
mod event;

use weir_guest_sdk::{Outcome, Partition, Record};

/// Validates one retail event and names its partition: `section`, `dt`.
pub fn transform(record: &Record<'_>) -> Outcome {
    let (section, time) = event::route(record)?;
    Ok(Partition::new()
        .segment("section", section)
        .segment("dt", time.utc_date()))
}

weir_guest_sdk::export!(transform, columns = ["section", "dt"]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_by_section_and_day_and_validates_as_retail_does() {
        let data = br#"{"metadata":{"uuid":"1","section":"Books","event_time":"2024-01-01T00:30:00+01:00"},"payload":{}}"#;
        let partition = transform(&Record::new(data)).expect("valid event");
        let segments: Vec<_> = partition.segments().collect();
        assert_eq!(segments, [("section", "Books"), ("dt", "2023-12-31")]);
        let empty = br#"{"metadata":{"uuid":"","section":"s"},"payload":{}}"#;
        assert_eq!(
            transform(&Record::new(empty)).unwrap_err().code(),
            "empty_field"
        );
    }
}
