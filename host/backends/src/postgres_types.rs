//! Parameter types sqlx has no plain equivalent for: a NULL whose type Postgres infers from
//! the statement, and a `timestamptz` given as microseconds since the Unix epoch.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo};
use sqlx::{Encode, Postgres, Type};

/// Microseconds from the Unix epoch to Postgres's epoch (2000-01-01 UTC).
pub const fn pg_epoch_offset_us() -> i64 {
    946_684_800_000_000
}

/// SQL NULL sent with an unspecified type (OID 0): Postgres infers it from the statement.
#[derive(Debug, Clone, Copy)]
pub struct Null;

impl Type<Postgres> for Null {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(0))
    }
}

impl Encode<'_, Postgres> for Null {
    fn encode_by_ref(&self, _buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Ok(IsNull::Yes)
    }
}

/// A `timestamptz` as microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy)]
pub struct TimestampMicros(pub i64);

impl Type<Postgres> for TimestampMicros {
    /// `timestamptz` (OID 1184).
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(1184))
    }
}

impl Encode<'_, Postgres> for TimestampMicros {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        let since_2000 = self
            .0
            .checked_sub(pg_epoch_offset_us())
            .ok_or("timestamp out of range")?;
        buf.extend(&since_2000.to_be_bytes());
        Ok(IsNull::No)
    }
}
