//! Instants as Unix milliseconds: RFC 3339 parsing and UTC calendar fields.
//!
//! Written by hand rather than with a date-time crate: a transform needs only "parse an event
//! time" and "which UTC day and hour is it", and every kilobyte of code is compiled into each
//! guest module.

use std::fmt;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Days from 0000-03-01 (the start of the proleptic Gregorian 400-year cycle used below) to
/// 1970-01-01.
const EPOCH_SHIFT_DAYS: i64 = 719_468;

/// The earliest instant [`Timestamp::parse_rfc3339`] returns: 0000-01-01T00:00:00Z.
const MIN_PARSED: i64 = -62_167_219_200_000;

/// The latest instant [`Timestamp::parse_rfc3339`] returns: 9999-12-31T23:59:59.999Z.
const MAX_PARSED: i64 = 253_402_300_799_999;

/// An instant, in milliseconds since 1970-01-01T00:00:00Z (leap seconds not counted, as in Unix
/// time).
///
/// Inside the guest, this is the only clock there is: a record's [`arrival`](crate::Record::arrival)
/// time, or a time parsed from the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `millis` milliseconds after (or, if negative, before) the Unix epoch.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    ///
    /// Accepts what RFC 3339 §5.6 allows: `T`, `t` or a space between date and time, `Z` or `z`,
    /// any number of fraction digits (truncated to milliseconds, never rounded, so a time never
    /// moves into the next second, hour or day), and `-00:00`. Ranges are checked, including the
    /// days of each month and leap years.
    ///
    /// A leap second (`:60`) is clamped to the last millisecond of its minute (`:59.999`), which
    /// keeps it in the day and hour it was written in. Returns `None` for anything else, and for
    /// instants outside 0000-01-01T00:00:00Z..=9999-12-31T23:59:59.999Z, so that
    /// [`utc_date`](Self::utc_date) of a parsed time is always `YYYY-MM-DD`.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let year = digits(b, 0, 4)?;
        literal(b, 4, b'-')?;
        let month = digits(b, 5, 2)?;
        literal(b, 7, b'-')?;
        let day = digits(b, 8, 2)?;
        if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
            return None;
        }
        let hour = digits(b, 11, 2)?;
        literal(b, 13, b':')?;
        let minute = digits(b, 14, 2)?;
        literal(b, 16, b':')?;
        let mut second = digits(b, 17, 2)?;

        let mut at = 19;
        let mut millis = 0;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                if at - start < 3 {
                    millis = millis * 10 + i64::from(b[at] - b'0');
                }
                at += 1;
            }
            match at - start {
                0 => return None,
                1 => millis *= 100,
                2 => millis *= 10,
                _ => {}
            }
        }

        let offset_minutes = match b.get(at)? {
            b'Z' | b'z' => {
                at += 1;
                0
            }
            sign @ (b'+' | b'-') => {
                let hours = digits(b, at + 1, 2)?;
                literal(b, at + 3, b':')?;
                let minutes = digits(b, at + 4, 2)?;
                at += 6;
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let magnitude = hours * 60 + minutes;
                if *sign == b'-' { -magnitude } else { magnitude }
            }
            _ => return None,
        };
        if at != b.len() {
            return None;
        }

        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour <= 23
            && minute <= 59
            && second <= 60;
        if !valid {
            return None;
        }
        if second == 60 {
            second = 59;
            millis = 999;
        }

        let local = days_from_civil(year, month, day) * MILLIS_PER_DAY
            + ((hour * 60 + minute) * 60 + second) * 1000
            + millis;
        let utc = local - offset_minutes * 60_000;
        (MIN_PARSED..=MAX_PARSED)
            .contains(&utc)
            .then_some(Self(utc))
    }

    /// The UTC calendar date, `YYYY-MM-DD`.
    ///
    /// Years outside 0..=9999 (reachable only through
    /// [`from_unix_millis`](Self::from_unix_millis)) are written with a sign and at least four
    /// digits, as ISO 8601 expanded years: `-0001-12-31`, `+10000-01-01`.
    pub fn utc_date(self) -> String {
        let (year, month, day) = civil_from_days(self.0.div_euclid(MILLIS_PER_DAY));
        if !(0..=9999).contains(&year) {
            return format!("{year:+05}-{month:02}-{day:02}");
        }
        // Written digit by digit: `format!` costs several times more, once per record.
        let mut date = String::with_capacity(10);
        push_two_digits(&mut date, year / 100);
        push_two_digits(&mut date, year % 100);
        date.push('-');
        push_two_digits(&mut date, month);
        date.push('-');
        push_two_digits(&mut date, day);
        date
    }

    /// The UTC hour of the day, `00` to `23`.
    pub fn utc_hour(self) -> String {
        let mut hour = String::with_capacity(2);
        push_two_digits(&mut hour, self.0.rem_euclid(MILLIS_PER_DAY) / 3_600_000);
        hour
    }
}

/// RFC 3339 in UTC with milliseconds, `2024-03-10T15:42:07.123Z`, for logs and test messages.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let of_day = self.0.rem_euclid(MILLIS_PER_DAY);
        write!(
            f,
            "{}T{:02}:{:02}:{:02}.{:03}Z",
            self.utc_date(),
            of_day / 3_600_000,
            of_day / 60_000 % 60,
            of_day / 1000 % 60,
            of_day % 1000
        )
    }
}

/// Appends `value`, which is in `0..=99`, as two decimal digits.
fn push_two_digits(text: &mut String, value: i64) {
    for digit in [value / 10, value % 10] {
        // In 0..=9, so the cast is exact.
        text.push(char::from(b'0' + digit as u8));
    }
}

/// The value of `len` ASCII digits at `b[at..]`, or `None` if any is missing or not a digit.
fn digits(b: &[u8], at: usize, len: usize) -> Option<i64> {
    b.get(at..at + len)?.iter().try_fold(0, |value, &c| {
        c.is_ascii_digit().then(|| value * 10 + i64::from(c - b'0'))
    })
}

fn literal(b: &[u8], at: usize, expected: u8) -> Option<()> {
    (b.get(at) == Some(&expected)).then_some(())
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
///
/// Counting years from March puts the leap day last, so the day of the year follows from the
/// month by one linear formula; a 400-year era always has 146,097 days.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - EPOCH_SHIFT_DAYS
}

/// The proleptic Gregorian `(year, month, day)` of a count of days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + EPOCH_SHIFT_DAYS;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<i64> {
        Timestamp::parse_rfc3339(text).map(Timestamp::unix_millis)
    }

    fn date_hour(text: &str) -> (String, String) {
        let t = Timestamp::parse_rfc3339(text).expect("test input is valid RFC 3339");
        (t.utc_date(), t.utc_hour())
    }

    #[test]
    fn parses_the_epoch_and_known_instants() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("2024-02-29T12:00:00Z"), Some(1_709_208_000_000));
        assert_eq!(parse("2001-09-09T01:46:40Z"), Some(1_000_000_000_000));
        assert_eq!(parse("1969-12-31T23:59:59.999Z"), Some(-1));
    }

    #[test]
    fn accepts_the_separators_rfc_3339_allows() {
        let expected = Some(1_710_085_327_000);
        assert_eq!(parse("2024-03-10T15:42:07Z"), expected);
        assert_eq!(parse("2024-03-10t15:42:07z"), expected);
        assert_eq!(parse("2024-03-10 15:42:07Z"), expected);
        assert_eq!(parse("2024-03-10T15:42:07+00:00"), expected);
        assert_eq!(parse("2024-03-10T15:42:07-00:00"), expected);
    }

    #[test]
    fn truncates_fractions_to_milliseconds_without_rounding_up() {
        assert_eq!(parse("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(parse("1970-01-01T00:00:00.05Z"), Some(50));
        assert_eq!(parse("1970-01-01T00:00:00.123Z"), Some(123));
        assert_eq!(parse("1970-01-01T00:00:00.123999999Z"), Some(123));
        assert_eq!(
            date_hour("2023-12-31T23:59:59.999999999Z"),
            ("2023-12-31".into(), "23".into())
        );
    }

    #[test]
    fn applies_offsets_that_cross_midnight_forwards() {
        assert_eq!(
            date_hour("2024-03-10T23:30:00-02:00"),
            ("2024-03-11".into(), "01".into())
        );
        assert_eq!(
            date_hour("2023-12-31T20:00:00-05:30"),
            ("2024-01-01".into(), "01".into())
        );
    }

    #[test]
    fn applies_offsets_that_cross_midnight_backwards() {
        assert_eq!(
            date_hour("2024-01-01T00:30:00+01:00"),
            ("2023-12-31".into(), "23".into())
        );
        assert_eq!(
            date_hour("2024-03-01T05:00:00+09:00"),
            ("2024-02-29".into(), "20".into())
        );
        assert_eq!(
            date_hour("2023-03-01T05:00:00+09:00"),
            ("2023-02-28".into(), "20".into())
        );
    }

    #[test]
    fn knows_which_years_have_a_leap_day() {
        assert!(parse("2024-02-29T00:00:00Z").is_some());
        assert!(parse("2000-02-29T00:00:00Z").is_some());
        assert!(parse("1600-02-29T00:00:00Z").is_some());
        assert!(parse("2023-02-29T00:00:00Z").is_none());
        assert!(parse("1900-02-29T00:00:00Z").is_none());
        assert!(parse("2100-02-29T00:00:00Z").is_none());
        assert!(parse("2024-02-30T00:00:00Z").is_none());
    }

    #[test]
    fn rejects_days_past_the_end_of_the_month() {
        for month in ["04", "06", "09", "11"] {
            assert!(parse(&format!("2024-{month}-30T00:00:00Z")).is_some());
            assert!(parse(&format!("2024-{month}-31T00:00:00Z")).is_none());
        }
        for month in ["01", "03", "05", "07", "08", "10", "12"] {
            assert!(parse(&format!("2024-{month}-31T00:00:00Z")).is_some());
            assert!(parse(&format!("2024-{month}-32T00:00:00Z")).is_none());
        }
    }

    #[test]
    fn rejects_out_of_range_fields() {
        for text in [
            "2024-00-10T00:00:00Z",
            "2024-13-10T00:00:00Z",
            "2024-03-00T00:00:00Z",
            "2024-03-10T24:00:00Z",
            "2024-03-10T23:60:00Z",
            "2024-03-10T23:59:61Z",
            "2024-03-10T23:59:59+24:00",
            "2024-03-10T23:59:59+01:60",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "",
            "2024-03-10",
            "2024-03-10T15:42Z",
            "2024-03-10T15:42:07",
            "2024-3-10T15:42:07Z",
            "2024-03-10T5:42:07Z",
            "2024-03-10_15:42:07Z",
            "2024/03/10T15:42:07Z",
            "2024-03-10T15:42:07.Z",
            "2024-03-10T15:42:07,5Z",
            "2024-03-10T15:42:07+0100",
            "2024-03-10T15:42:07+01",
            "2024-03-10T15:42:07Z ",
            " 2024-03-10T15:42:07Z",
            "2024-03-10T15:42:07ZZ",
            "+2024-03-10T15:42:07Z",
            "-024-03-10T15:42:07Z",
            "２０２４-03-10T15:42:07Z",
            "2024-03-10T15:42:07\u{0}Z",
            "1710085327",
            "yesterday",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn clamps_a_leap_second_into_its_own_minute() {
        assert_eq!(
            parse("2016-12-31T23:59:60Z"),
            parse("2016-12-31T23:59:59.999Z")
        );
        assert_eq!(
            date_hour("2016-12-31T23:59:60.5Z"),
            ("2016-12-31".into(), "23".into())
        );
    }

    #[test]
    fn keeps_parsed_instants_within_four_digit_years() {
        assert!(parse("0000-01-01T00:00:00Z").is_some());
        assert!(parse("9999-12-31T23:59:59.999Z").is_some());
        assert!(parse("0000-01-01T00:00:00+00:01").is_none());
        assert!(parse("9999-12-31T23:59:59-00:01").is_none());
        assert_eq!(parse("0000-01-01T00:00:00Z"), Some(MIN_PARSED));
        assert_eq!(parse("9999-12-31T23:59:59.999Z"), Some(MAX_PARSED));
    }

    #[test]
    fn formats_dates_and_hours_before_the_epoch() {
        let t = Timestamp::from_unix_millis(-1);
        assert_eq!(t.utc_date(), "1969-12-31");
        assert_eq!(t.utc_hour(), "23");
        let t = Timestamp::from_unix_millis(-MILLIS_PER_DAY);
        assert_eq!(t.utc_date(), "1969-12-31");
        assert_eq!(t.utc_hour(), "00");
    }

    #[test]
    fn formats_years_outside_four_digits_with_a_sign() {
        assert_eq!(
            Timestamp::from_unix_millis(MIN_PARSED - 1).utc_date(),
            "-0001-12-31"
        );
        assert_eq!(
            Timestamp::from_unix_millis(MAX_PARSED + 1).utc_date(),
            "+10000-01-01"
        );
        // The extremes of i64 must format, not overflow.
        assert!(
            Timestamp::from_unix_millis(i64::MIN)
                .utc_date()
                .starts_with('-')
        );
        assert!(
            Timestamp::from_unix_millis(i64::MAX)
                .utc_date()
                .starts_with('+')
        );
    }

    #[test]
    fn displays_as_rfc_3339_in_utc() {
        let t = Timestamp::parse_rfc3339("2024-03-10T17:42:07.25+02:00");
        assert_eq!(
            t.map(|t| t.to_string()).as_deref(),
            Some("2024-03-10T15:42:07.250Z")
        );
    }

    #[test]
    fn converts_every_day_of_eight_centuries_both_ways() {
        // From 1600-03-01 through 2400-03-01: covers every kind of leap year rule twice.
        let mut expected = (1600, 3, 1);
        for days in days_from_civil(1600, 3, 1)..=days_from_civil(2400, 3, 1) {
            let civil = civil_from_days(days);
            assert_eq!(civil, expected, "day {days}");
            assert_eq!(days_from_civil(civil.0, civil.1, civil.2), days);
            let (year, month, day) = expected;
            expected = if day < days_in_month(year, month) {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
        }
    }
}
