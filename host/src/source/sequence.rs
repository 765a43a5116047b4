//! Kinesis sequence numbers, compared as numbers.
//!
//! Real Kinesis numbers are decimal strings of around 56 digits (more than `u128` holds); the
//! local stand-in numbers them "1", "2", ... Comparing them as strings would put "10" before
//! "9", so they are kept as normalised digit strings and ordered by length, then digits.

use std::cmp::Ordering;
use std::fmt;

/// A record's position in its shard: the sequence number and, for a user record inside a KPL
/// aggregate, its sub-sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    sequence: Box<str>,
    sub: Option<u32>,
}

/// A sequence number that is not a decimal string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sequence number {0:?} is not a decimal number")]
pub struct InvalidSequenceNumber(pub String);

impl Position {
    /// Parses a decimal sequence number; leading zeros are dropped so equal numbers compare equal.
    pub fn parse(sequence: &str) -> Result<Self, InvalidSequenceNumber> {
        if sequence.is_empty() || !sequence.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidSequenceNumber(sequence.to_owned()));
        }
        let trimmed = sequence.trim_start_matches('0');
        let digits = if trimmed.is_empty() { "0" } else { trimmed };
        Ok(Self {
            sequence: digits.into(),
            sub: None,
        })
    }

    /// Parses a position as [`Display`](fmt::Display) writes it: `123`, or `123.4` inside an
    /// aggregate.
    pub fn parse_display(text: &str) -> Result<Self, InvalidSequenceNumber> {
        match text.split_once('.') {
            None => Self::parse(text),
            Some((sequence, sub)) => {
                let sub = sub
                    .parse()
                    .ok()
                    .filter(|_| sub.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| InvalidSequenceNumber(text.to_owned()))?;
                Ok(Self::parse(sequence)?.with_sub(sub))
            }
        }
    }

    /// The position of a plain (not aggregated) record numbered `n`, as file sources number them.
    pub fn from_index(n: u64) -> Self {
        Self {
            sequence: n.to_string().into(),
            sub: None,
        }
    }

    /// The same sequence number, pointing at the `sub`-th user record of an aggregate.
    pub fn with_sub(mut self, sub: u32) -> Self {
        self.sub = Some(sub);
        self
    }

    /// The sequence number as Kinesis spells it (normalised).
    pub fn sequence_number(&self) -> &str {
        &self.sequence
    }

    /// The sub-sequence number inside a KPL aggregate, if any.
    pub fn sub_sequence_number(&self) -> Option<u32> {
        self.sub
    }
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sequence
            .len()
            .cmp(&other.sequence.len())
            .then_with(|| self.sequence.cmp(&other.sequence))
            .then_with(|| self.sub.cmp(&other.sub))
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `123` or, inside an aggregate, `123.4`: safe in object keys and file names.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sub {
            None => f.write_str(&self.sequence),
            Some(sub) => write!(f, "{}.{sub}", self.sequence),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(s: &str) -> Position {
        Position::parse(s).unwrap()
    }

    #[test]
    fn compares_as_numbers_not_strings() {
        assert!(pos("9") < pos("10"));
        assert!(pos("00010") == pos("10"));
        let real = "49590338271490256608559692538361571095921575989136588898";
        let next = "49590338271490256608559692538361571095921575989136588899";
        assert!(pos(real) < pos(next));
        assert!(pos("99999999999999999999999999999999999999999") < pos(real));
    }

    #[test]
    fn orders_sub_sequence_numbers_within_one_sequence_number() {
        assert!(pos("5").with_sub(0) < pos("5").with_sub(1));
        assert!(pos("5") < pos("5").with_sub(0));
        assert!(pos("5").with_sub(9) < pos("6"));
        assert_eq!(pos("5").with_sub(3).to_string(), "5.3");
    }

    #[test]
    fn parses_what_display_writes() {
        for p in [
            pos("123"),
            pos("5").with_sub(0),
            pos("49590338271490256608559692538361571095921575989136588898").with_sub(42),
        ] {
            assert_eq!(Position::parse_display(&p.to_string()).unwrap(), p);
        }
        for bad in ["1.", ".1", "1.x", "1.+2", "1.2.3", "a.1"] {
            assert!(Position::parse_display(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_decimal_number() {
        for bad in ["", "-1", "1e5", " 1", "0x10", "½"] {
            assert!(Position::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(pos("000").sequence_number(), "0");
    }
}
