//! HTTP-dates (RFC 9110 §5.6.7: IMF-fixdate and the obsolete RFC 850 and asctime formats)
//! and the date-valued response fields a cache reads: `Date`, `Expires`, `Last-Modified` and
//! `Age` (RFC 9111 §5.1, §5.3). Times are seconds since the Unix epoch (`i64`, so dates
//! before 1970 work).

use sluice_plugin_sdk::Headers;

use crate::directives::{DELTA_MAX, parse_delta};

/// The time an invalid or ambiguous `Expires` stands for: the epoch, "already expired"
/// (RFC 9111 §5.3).
pub const EXPIRED: i64 = 0;

const SHORT_DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (valid for any year we accept).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of a time, for the RFC 850 two-digit-year rule.
fn year_of(unix_s: i64) -> i64 {
    // Walk from an estimate; at most a couple of steps.
    let mut year = 1970 + unix_s.div_euclid(31_556_952);
    while days_from_civil(year, 1, 1) * 86_400 > unix_s {
        year -= 1;
    }
    while days_from_civil(year + 1, 1, 1) * 86_400 <= unix_s {
        year += 1;
    }
    year
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whether `value` has exactly the shape of `template`: `9` is a digit, `_` a space or a
/// digit, `a` a letter, any other byte itself.
fn fits(value: &[u8], template: &str) -> bool {
    value.len() == template.len()
        && value.iter().zip(template.bytes()).all(|(&v, t)| match t {
            b'9' => v.is_ascii_digit(),
            b'_' => v == b' ' || v.is_ascii_digit(),
            b'a' => v.is_ascii_alphabetic(),
            other => v == other,
        })
}

/// The number the digits of `s` spell (spaces skipped; [`fits`] checked the rest).
fn number(s: &[u8]) -> u32 {
    s.iter()
        .filter(|b| b.is_ascii_digit())
        .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

fn month(s: &[u8]) -> Option<u32> {
    MONTHS.iter().position(|m| m.as_bytes() == s).map(|i| i as u32 + 1)
}

/// `HH:MM:SS` (already shaped) as seconds into the day (a leap second 60 is accepted).
fn time_of_day(s: &[u8]) -> Option<i64> {
    let (h, m, sec) = (number(&s[0..2]), number(&s[3..5]), number(&s[6..8]));
    (h < 24 && m < 60 && sec <= 60).then(|| i64::from(h * 3600 + m * 60 + sec))
}

fn assemble(year: i64, month: u32, day: u32, seconds: i64) -> Option<i64> {
    if !(1..=9999).contains(&year) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + seconds)
}

/// IMF-fixdate after `day-name ","`: ` 06 Nov 1994 08:49:37 GMT`.
fn imf_fixdate(rest: &[u8]) -> Option<i64> {
    if !fits(rest, " 99 aaa 9999 99:99:99 GMT") {
        return None;
    }
    let year = i64::from(number(&rest[8..12]));
    assemble(
        year,
        month(&rest[4..7])?,
        number(&rest[1..3]),
        time_of_day(&rest[13..21])?,
    )
}

/// RFC 850 after `day-name-l ","`: ` 06-Nov-94 08:49:37 GMT`. `now_s` resolves the year: a
/// date that would be more than 50 years in the future is taken from the previous century.
fn rfc850_date(rest: &[u8], now_s: i64) -> Option<i64> {
    if !fits(rest, " 99-aaa-99 99:99:99 GMT") {
        return None;
    }
    let now_year = year_of(now_s);
    let mut year = now_year - now_year.rem_euclid(100) + i64::from(number(&rest[8..10]));
    if year > now_year + 50 {
        year -= 100;
    }
    assemble(
        year,
        month(&rest[4..7])?,
        number(&rest[1..3]),
        time_of_day(&rest[11..19])?,
    )
}

/// asctime after `day-name`: ` Nov  6 08:49:37 1994` (the day as two digits, or a space and
/// a digit).
fn asctime_date(rest: &[u8]) -> Option<i64> {
    if !fits(rest, " aaa _9 99:99:99 9999") {
        return None;
    }
    let year = i64::from(number(&rest[17..21]));
    assemble(
        year,
        month(&rest[1..4])?,
        number(&rest[5..7]),
        time_of_day(&rest[8..16])?,
    )
}

/// Parses an HTTP-date exactly as RFC 9110 §5.6.7 writes it: IMF-fixdate, or one of the
/// two obsolete formats recipients must accept (RFC 850, asctime). Spacing, case, digit
/// counts and the `GMT` suffix must be as the grammar says; only whitespace around the whole
/// value is ignored (it is not part of a field value). `now_s` resolves the RFC 850
/// two-digit year. Day names must be spelled right but are not checked against the date.
/// Returns `None` for anything else.
pub fn parse_http_date(value: &str, now_s: i64) -> Option<i64> {
    let value = value.trim_matches([' ', '\t']).as_bytes();
    if let Some(comma) = value.iter().position(|&b| b == b',') {
        let (day_name, rest) = (&value[..comma], &value[comma + 1..]);
        if SHORT_DAYS.iter().any(|d| d.as_bytes() == day_name) {
            return imf_fixdate(rest);
        }
        if LONG_DAYS.iter().any(|d| d.as_bytes() == day_name) {
            return rfc850_date(rest, now_s);
        }
        return None;
    }
    let day_name = value.get(..3)?;
    if !SHORT_DAYS.iter().any(|d| d.as_bytes() == day_name) {
        return None;
    }
    asctime_date(&value[3..])
}

/// Formats a time as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn format_http_date(unix_s: i64) -> String {
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    let year = year_of(unix_s);
    let mut month = 1;
    while month < 12 && days_from_civil(year, month + 1, 1) <= days {
        month += 1;
    }
    let day = days - days_from_civil(year, month, 1) + 1;
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = SHORT_DAYS[(days + 3).rem_euclid(7) as usize];
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[month as usize - 1],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The date-valued fields of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseDates {
    /// `Date`: the first line, when it is a valid HTTP-date.
    pub date: Option<i64>,
    /// `Expires`: [`EXPIRED`] when invalid or when several lines disagree (RFC 9111 §4.2.1, §5.3).
    pub expires: Option<i64>,
    /// `Last-Modified`: the first line, when valid.
    pub last_modified: Option<i64>,
    /// `Age` in seconds: the first member of the first line; invalid is ignored, huge is 2^31
    /// (RFC 9111 §1.2.2, §5.1).
    pub age: Option<u32>,
}

fn text(value: &[u8]) -> Option<&str> {
    std::str::from_utf8(value).ok()
}

impl ResponseDates {
    /// Reads the date fields of `headers`; `now_s` only resolves two-digit years.
    pub fn parse(headers: &[(String, Vec<u8>)], now_s: i64) -> Self {
        let first_date = |name: &str| {
            headers
                .get_bytes(name)
                .and_then(text)
                .and_then(|v| parse_http_date(v, now_s))
        };
        let mut expires = None;
        for line in headers.get_all("expires") {
            let at = text(line).and_then(|v| parse_http_date(v, now_s)).unwrap_or(EXPIRED);
            expires = match expires {
                None => Some(at),
                Some(seen) if seen == at => Some(at),
                Some(_) => Some(EXPIRED),
            };
        }
        let age = headers
            .get_bytes("age")
            .and_then(text)
            .and_then(|v| parse_delta(v.split(',').next().unwrap_or("").trim()))
            .map(|d| d.min(DELTA_MAX));
        ResponseDates {
            date: first_date("date"),
            expires,
            last_modified: first_date("last-modified"),
            age,
        }
    }
}

#[cfg(test)]
#[path = "dates_tests.rs"]
mod tests;
