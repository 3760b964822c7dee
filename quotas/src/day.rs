//! The quota day: which calendar day an instant belongs to for one process.
//!
//! A process's quota day is the **calendar day in the process's configured
//! time zone** — not a rolling 24 hours and not the UTC day. Because the
//! boundaries are local midnights, a quota day lasts 23 hours on the day a
//! zone springs forward and 25 hours on the day it falls back; `chrono-tz`
//! carries the IANA rules, so this is correct for every zone and year it
//! knows.
//!
//! The clock is always passed in by the caller (`at`), never read here, so
//! replaying an event log with its own timestamps crosses day boundaries
//! exactly as the live run did.
//!
//! **Total.** Every instant has a quota day: [`QuotaDay::of`] accepts any
//! `DateTime<Utc>` and [`QuotaDay::of_timestamp_micros`] any `i64`
//! microsecond timestamp, in every zone, without panicking. The day is
//! computed as `floor((utc_seconds + zone_offset) / 86 400)`, never through a
//! local `NaiveDateTime` (which does not exist for instants near chrono's
//! range ends: `DateTime::<Utc>::MAX_UTC` in Europe/Berlin is past
//! `NaiveDateTime::MAX`). Such far days are still days: they order,
//! compare and persist like any other; only their calendar form is missing
//! ([`QuotaDay::date`] is `None`, and they display as `day#N`). Beyond
//! chrono's range, an instant takes the zone's offset at the range's edge
//! (the zone's last rule). A property test covers the whole `i64` range in
//! every zone of `chrono-tz`.
//!
//! [`DayCache`] makes the per-call day lookup a single relaxed atomic load on
//! the hot path: it remembers the UTC span (at minute resolution) of the day
//! last seen and only falls back to the time-zone database when an instant
//! falls outside it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar day, stored as days since 1970-01-01 (negative before).
///
/// Serialized as `"YYYY-MM-DD"`. Ordering is chronological.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuotaDay(i32);

const UNIX_EPOCH_DAY_CE: i32 = 719_163;
const SECONDS_PER_DAY: i64 = 86_400;

/// The zone's offset from UTC, in seconds, at the UTC instant `utc`.
/// `offset_from_utc_datetime` is total in chrono-tz (the spans cover all time).
fn offset_seconds(utc: &NaiveDateTime, tz: Tz) -> i64 {
    i64::from(tz.offset_from_utc_datetime(utc).fix().local_minus_utc())
}

/// The local calendar day of `utc_seconds` at `offset` seconds from UTC.
fn local_day(utc_seconds: i64, offset: i64) -> QuotaDay {
    // |utc_seconds| ≤ i64::MAX / 10^6 and |offset| < one day: no overflow, and
    // the day number (at most ~1.07 × 10^8 in magnitude) always fits an i32.
    let days = utc_seconds
        .saturating_add(offset)
        .div_euclid(SECONDS_PER_DAY);
    QuotaDay(i32::try_from(days).unwrap_or(if days < 0 { i32::MIN + 1 } else { i32::MAX }))
}

impl QuotaDay {
    /// The quota day that `at` falls on in time zone `tz`. Total: see the
    /// module docs for instants whose local date chrono cannot represent.
    pub fn of(at: DateTime<Utc>, tz: Tz) -> QuotaDay {
        local_day(at.timestamp(), offset_seconds(&at.naive_utc(), tz))
    }

    /// The quota day of a timestamp in microseconds since 1970-01-01 UTC
    /// (as Parquet and the engine store it), for every `i64`. Instants
    /// beyond chrono's range use the zone's offset at the range's edge.
    pub fn of_timestamp_micros(micros: i64, tz: Tz) -> QuotaDay {
        let seconds = micros.div_euclid(1_000_000);
        let probe = DateTime::<Utc>::from_timestamp(seconds, 0).unwrap_or(if seconds < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        });
        local_day(seconds, offset_seconds(&probe.naive_utc(), tz))
    }

    /// Wraps a calendar date.
    pub fn from_date(date: NaiveDate) -> QuotaDay {
        QuotaDay(date.num_days_from_ce() - UNIX_EPOCH_DAY_CE)
    }

    /// Days since 1970-01-01 (the on-disk and on-Redis representation).
    pub fn days_since_epoch(self) -> i32 {
        self.0
    }

    /// Inverse of [`QuotaDay::days_since_epoch`].
    pub fn from_days_since_epoch(days: i32) -> QuotaDay {
        QuotaDay(days)
    }

    /// The calendar date; `None` only for days outside chrono's range
    /// (which no instant can produce).
    pub fn date(self) -> Option<NaiveDate> {
        NaiveDate::from_num_days_from_ce_opt(self.0.checked_add(UNIX_EPOCH_DAY_CE)?)
    }

    /// The first instant of this day in `tz` (local midnight, or the first
    /// local time after it when a DST gap swallows midnight).
    pub fn start(self, tz: Tz) -> Option<DateTime<Utc>> {
        start_of_local_day(tz, self.date()?)
    }

    /// The first instant of the next day in `tz`: when usage resets.
    pub fn end(self, tz: Tz) -> Option<DateTime<Utc>> {
        start_of_local_day(tz, self.date()?.checked_add_days(Days::new(1))?)
    }
}

impl fmt::Display for QuotaDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.date() {
            Some(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            None => write!(f, "day#{}", self.0),
        }
    }
}

impl Serialize for QuotaDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for QuotaDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(QuotaDay::from_date)
            .map_err(serde::de::Error::custom)
    }
}

/// Local midnight of `date` in `tz` as a UTC instant. Where midnight does
/// not exist (a DST gap at 00:00, e.g. America/Santiago), the day starts at
/// the first local minute that does; where it exists twice, the earlier one.
fn start_of_local_day(tz: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    // The longest DST gap in the IANA database is 2 hours; 4 hours of
    // probing leaves a wide margin and always terminates.
    for minute in 0..240u32 {
        let time = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0)?;
        match tz.from_local_datetime(&date.and_time(time)) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(earliest, _) => return Some(earliest.with_timezone(&Utc)),
            LocalResult::None => continue,
        }
    }
    None
}

/// A one-word cache of "the UTC minutes `[start, start+len)` are quota day
/// `d`" for one time zone.
///
/// Layout of the word: `start_minute:32 | len_minutes:11 | day:21`, with 0
/// meaning empty. Only days whose both boundaries fall on whole UTC minutes
/// are cached (every zone since the 1970s; some historical LMT offsets have
/// seconds), so a minute-resolution range test is exact. Racing refills are
/// harmless: every value ever stored is a true fact about the zone.
#[derive(Debug, Default)]
pub struct DayCache {
    word: AtomicU64,
}

const LEN_BITS: u32 = 11;
const DAY_BITS: u32 = 21;

impl DayCache {
    /// An empty cache.
    pub fn new() -> DayCache {
        DayCache::default()
    }

    /// The quota day of `at` in `tz`, served from the cache when possible.
    #[inline]
    pub fn day_of(&self, at: DateTime<Utc>, tz: Tz) -> QuotaDay {
        let secs = at.timestamp();
        let w = self.word.load(Ordering::Relaxed);
        if w != 0 && secs >= 0 {
            let minute = (secs / 60) as u64;
            let start = w >> (LEN_BITS + DAY_BITS);
            let len = (w >> DAY_BITS) & ((1 << LEN_BITS) - 1);
            if minute >= start && minute < start + len {
                return QuotaDay((w & ((1 << DAY_BITS) - 1)) as i32);
            }
        }
        self.refill(at, tz)
    }

    #[cold]
    fn refill(&self, at: DateTime<Utc>, tz: Tz) -> QuotaDay {
        let day = QuotaDay::of(at, tz);
        if let Some(word) = Self::pack(day, tz) {
            self.word.store(word, Ordering::Relaxed);
        }
        day
    }

    fn pack(day: QuotaDay, tz: Tz) -> Option<u64> {
        let start = day.start(tz)?.timestamp();
        let end = day.end(tz)?.timestamp();
        if start < 0 || start % 60 != 0 || end % 60 != 0 || day.0 < 0 {
            return None;
        }
        let start_min = u64::try_from(start / 60).ok()?;
        let len = u64::try_from((end - start) / 60).ok()?;
        let d = u64::try_from(day.0).ok()?;
        if start_min >= 1 << 32 || len == 0 || len >= 1 << LEN_BITS || d >= 1 << DAY_BITS {
            return None;
        }
        Some((start_min << (LEN_BITS + DAY_BITS)) | (len << DAY_BITS) | d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn berlin_spring_forward_day_has_23_hours() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let day = QuotaDay::of(utc("2026-03-29T12:00:00Z"), tz);
        assert_eq!(day.to_string(), "2026-03-29");
        let (s, e) = (day.start(tz).unwrap(), day.end(tz).unwrap());
        assert_eq!(s, utc("2026-03-28T23:00:00Z"));
        assert_eq!(e, utc("2026-03-29T22:00:00Z"));
        assert_eq!(e - s, Duration::hours(23));
    }

    #[test]
    fn new_york_fall_back_day_has_25_hours() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let day = QuotaDay::of(utc("2026-11-01T12:00:00Z"), tz);
        assert_eq!(day.to_string(), "2026-11-01");
        assert_eq!(
            day.end(tz).unwrap() - day.start(tz).unwrap(),
            Duration::hours(25)
        );
    }

    #[test]
    fn midnight_gap_starts_day_at_first_existing_minute() {
        // Chile springs forward at 24:00 -> 01:00 local.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        let start = QuotaDay::from_date(date).start(tz).unwrap();
        assert_eq!(
            start.with_timezone(&tz).time(),
            NaiveTime::from_hms_opt(1, 0, 0).unwrap()
        );
    }

    #[test]
    fn cache_agrees_with_database_around_boundaries() {
        for zone in ["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "UTC"] {
            let tz: Tz = zone.parse().unwrap();
            let cache = DayCache::new();
            let mut t = utc("2026-03-07T00:00:00Z");
            let end = utc("2026-04-03T00:00:00Z");
            while t < end {
                assert_eq!(cache.day_of(t, tz), QuotaDay::of(t, tz), "{zone} at {t}");
                t += Duration::seconds(1789);
            }
        }
    }

    /// Instants at and around the ends of chrono's range and of `i64`.
    fn edge_micros() -> Vec<i64> {
        let max = DateTime::<Utc>::MAX_UTC.timestamp_micros();
        let min = DateTime::<Utc>::MIN_UTC.timestamp_micros();
        vec![
            i64::MIN,
            i64::MIN + 1,
            min - 1,
            min,
            min + 1,
            -1,
            0,
            1,
            max - 1,
            max,
            max + 1,
            i64::MAX - 1,
            i64::MAX,
        ]
    }

    /// Everything a caller can do with the day of `micros` in `tz`: none of
    /// it may panic, and the day agrees with chrono wherever chrono can
    /// represent the local date.
    fn check_day(micros: i64, tz: Tz) -> Result<(), String> {
        let day = QuotaDay::of_timestamp_micros(micros, tz);
        let utc_day = micros.div_euclid(86_400_000_000);
        if (i64::from(day.days_since_epoch()) - utc_day).abs() > 1 {
            return Err(format!(
                "{tz} at {micros}: day {day:?} is not within a day of UTC day {utc_day}"
            ));
        }
        let _ = (day.to_string(), day.date(), day.start(tz), day.end(tz));
        if let Some(at) = DateTime::<Utc>::from_timestamp_micros(micros) {
            if QuotaDay::of(at, tz) != day {
                return Err(format!(
                    "{tz} at {micros}: of() and of_timestamp_micros() disagree"
                ));
            }
            if DayCache::new().day_of(at, tz) != day {
                return Err(format!("{tz} at {micros}: the cache disagrees"));
            }
            let offset = tz.offset_from_utc_datetime(&at.naive_utc()).fix();
            if let Some(local) = at.naive_utc().checked_add_offset(offset) {
                if QuotaDay::from_date(local.date()) != day {
                    return Err(format!("{tz} at {micros}: chrono says {}", local.date()));
                }
            }
        }
        Ok(())
    }

    /// The reported panic: `MAX_UTC` in a zone east of UTC has no local
    /// `NaiveDateTime` ("Local time out of range").
    #[test]
    fn the_last_instant_in_berlin_has_a_day() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let day = QuotaDay::of(DateTime::<Utc>::MAX_UTC, tz);
        assert!(QuotaDay::of_timestamp_micros(i64::MAX, tz) >= day);
        assert!(day.date().is_none(), "past NaiveDate::MAX");
        assert!(day > QuotaDay::of(DateTime::<Utc>::MAX_UTC, Tz::UTC));
        assert!(day.to_string().starts_with("day#"));
    }

    #[test]
    fn every_zone_at_the_edges_of_time() {
        for tz in chrono_tz::TZ_VARIANTS {
            for m in edge_micros() {
                check_day(m, tz).unwrap();
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// The whole i64 microsecond range, every zone of chrono-tz.
        #[test]
        fn every_timestamp_in_every_zone_has_a_day(
            micros in proptest::prelude::any::<i64>(),
            zone in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let tz = chrono_tz::TZ_VARIANTS[zone.index(chrono_tz::TZ_VARIANTS.len())];
            check_day(micros, tz).map_err(proptest::test_runner::TestCaseError::fail)?;
        }

        /// The same near today, where zones have real DST rules.
        #[test]
        fn recent_timestamps_in_every_zone(
            micros in -2_000_000_000_000_000i64..5_000_000_000_000_000,
            zone in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let tz = chrono_tz::TZ_VARIANTS[zone.index(chrono_tz::TZ_VARIANTS.len())];
            check_day(micros, tz).map_err(proptest::test_runner::TestCaseError::fail)?;
        }
    }

    #[test]
    fn serde_round_trip() {
        let d = QuotaDay::from_date(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, "\"2026-11-23\"");
        assert_eq!(serde_json::from_str::<QuotaDay>(&json).unwrap(), d);
        assert_eq!(QuotaDay::from_days_since_epoch(d.days_since_epoch()), d);
    }
}
