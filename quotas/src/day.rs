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
//! [`DayCache`] makes the per-call day lookup a single relaxed atomic load on
//! the hot path: it remembers the UTC span (at minute resolution) of the day
//! last seen and only falls back to the time-zone database when an instant
//! falls outside it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar day, stored as days since 1970-01-01 (negative before).
///
/// Serialized as `"YYYY-MM-DD"`. Ordering is chronological.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuotaDay(i32);

const UNIX_EPOCH_DAY_CE: i32 = 719_163;

impl QuotaDay {
    /// The quota day that `at` falls on in time zone `tz`.
    pub fn of(at: DateTime<Utc>, tz: Tz) -> QuotaDay {
        QuotaDay::from_date(at.with_timezone(&tz).date_naive())
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

    #[test]
    fn serde_round_trip() {
        let d = QuotaDay::from_date(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, "\"2026-11-23\"");
        assert_eq!(serde_json::from_str::<QuotaDay>(&json).unwrap(), d);
        assert_eq!(QuotaDay::from_days_since_epoch(d.days_since_epoch()), d);
    }
}
