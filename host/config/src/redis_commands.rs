//! The Redis commands a plugin may be granted: only commands whose keys all come first in
//! their arguments, so that the host can prefix every key and no argument a plugin passes can
//! name a key outside its namespace. Commands that reach other keys or the server itself
//! (KEYS, SCAN, SORT, EVAL, SCRIPT, FLUSHALL, CONFIG, SELECT, COPY with DB, MIGRATE, ...) are
//! not in the table and cannot be granted.

use crate::{RedisGrant, RedisSettings};

/// How many keys a command takes before its other arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCount {
    /// Exactly this many.
    Exactly(usize),
    /// One or more, and no other arguments.
    AtLeastOne,
}

const ONE: KeyCount = KeyCount::Exactly(1);
const TWO: KeyCount = KeyCount::Exactly(2);
const MANY: KeyCount = KeyCount::AtLeastOne;

/// Every grantable command with its key layout.
const COMMANDS: &[(&str, KeyCount)] = &[
    // strings and counters
    ("GET", ONE),
    ("SET", ONE),
    ("SETNX", ONE),
    ("SETEX", ONE),
    ("PSETEX", ONE),
    ("GETSET", ONE),
    ("GETDEL", ONE),
    ("GETEX", ONE),
    ("GETRANGE", ONE),
    ("SETRANGE", ONE),
    ("APPEND", ONE),
    ("STRLEN", ONE),
    ("INCR", ONE),
    ("INCRBY", ONE),
    ("INCRBYFLOAT", ONE),
    ("DECR", ONE),
    ("DECRBY", ONE),
    ("MGET", MANY),
    ("GETBIT", ONE),
    ("SETBIT", ONE),
    ("BITCOUNT", ONE),
    // keys
    ("DEL", MANY),
    ("UNLINK", MANY),
    ("EXISTS", MANY),
    ("TOUCH", MANY),
    ("TYPE", ONE),
    ("EXPIRE", ONE),
    ("PEXPIRE", ONE),
    ("EXPIREAT", ONE),
    ("PEXPIREAT", ONE),
    ("TTL", ONE),
    ("PTTL", ONE),
    ("PERSIST", ONE),
    ("RENAME", TWO),
    ("RENAMENX", TWO),
    // hashes
    ("HGET", ONE),
    ("HSET", ONE),
    ("HSETNX", ONE),
    ("HMGET", ONE),
    ("HDEL", ONE),
    ("HGETALL", ONE),
    ("HINCRBY", ONE),
    ("HINCRBYFLOAT", ONE),
    ("HEXISTS", ONE),
    ("HLEN", ONE),
    ("HKEYS", ONE),
    ("HVALS", ONE),
    // lists
    ("LPUSH", ONE),
    ("RPUSH", ONE),
    ("LPOP", ONE),
    ("RPOP", ONE),
    ("LRANGE", ONE),
    ("LLEN", ONE),
    ("LTRIM", ONE),
    ("LINDEX", ONE),
    ("LREM", ONE),
    ("LMOVE", TWO),
    ("RPOPLPUSH", TWO),
    // sets
    ("SADD", ONE),
    ("SREM", ONE),
    ("SMEMBERS", ONE),
    ("SISMEMBER", ONE),
    ("SCARD", ONE),
    ("SMOVE", TWO),
    // sorted sets
    ("ZADD", ONE),
    ("ZREM", ONE),
    ("ZRANGE", ONE),
    ("ZRANGEBYSCORE", ONE),
    ("ZREMRANGEBYSCORE", ONE),
    ("ZREMRANGEBYRANK", ONE),
    ("ZCARD", ONE),
    ("ZSCORE", ONE),
    ("ZINCRBY", ONE),
    ("ZCOUNT", ONE),
    ("ZRANK", ONE),
    // hyperloglog and streams
    ("PFADD", ONE),
    ("PFCOUNT", MANY),
    ("XADD", ONE),
    ("XLEN", ONE),
    ("XRANGE", ONE),
    ("XTRIM", ONE),
];

/// The key layout of `name` (any case), or None when it cannot be granted.
pub fn layout(name: &str) -> Option<KeyCount> {
    COMMANDS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, k)| *k)
}

/// Whether `keys` keys and `args` other arguments fit `layout`.
pub fn fits(layout: KeyCount, keys: usize, args: usize) -> Result<(), String> {
    match layout {
        KeyCount::Exactly(n) if keys == n => Ok(()),
        KeyCount::Exactly(n) => Err(format!("takes {n} key(s), got {keys}")),
        KeyCount::AtLeastOne if keys >= 1 && args == 0 => Ok(()),
        KeyCount::AtLeastOne => Err(format!(
            "takes one or more keys and no other arguments, got {keys} key(s) and {args} argument(s)"
        )),
    }
}

/// Checks a plugin's grant against what can be granted: commands from the safe table, and
/// (when `[redis]` is configured) scripts it defines.
pub fn check_grant(grant: &RedisGrant, settings: Option<&RedisSettings>) -> Result<(), String> {
    if let Some(bad) = grant.commands.iter().find(|c| layout(c).is_none()) {
        return Err(format!(
            "grants.redis.commands names '{bad}', which cannot be granted (only commands whose keys come first, \
             so the host can keep them in the plugin's namespace)"
        ));
    }
    if let Some(bad) = grant
        .channels
        .iter()
        .chain(&grant.subscribe)
        .find(|c| !valid_channel(c))
    {
        return Err(format!(
            "grants.redis names the channel '{bad}': channel names are 1 to 128 characters of A-Z, a-z, 0-9,              '-', '_', '.' and ':'"
        ));
    }
    if let Some(settings) = settings
        && let Some(missing) = grant.scripts.iter().find(|s| !settings.scripts.contains_key(*s))
    {
        return Err(format!(
            "grants.redis.scripts names '{missing}', which [redis.scripts] does not define"
        ));
    }
    Ok(())
}

/// Whether `channel` may be granted: no pattern characters, nothing that needs quoting.
fn valid_channel(channel: &str) -> bool {
    (1..=128).contains(&channel.len())
        && channel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_that_can_reach_other_keys_cannot_be_granted() {
        for name in [
            "KEYS", "SCAN", "SORT", "EVAL", "EVALSHA", "SCRIPT", "FLUSHALL", "CONFIG", "SELECT", "COPY", "MIGRATE",
            "MSET", "OBJECT",
        ] {
            assert_eq!(layout(name), None, "{name}");
        }
        assert_eq!(layout("get"), Some(KeyCount::Exactly(1)));
        assert!(fits(KeyCount::Exactly(1), 1, 3).is_ok());
        assert!(fits(KeyCount::Exactly(1), 0, 1).is_err());
        assert!(fits(KeyCount::AtLeastOne, 2, 0).is_ok());
        assert!(fits(KeyCount::AtLeastOne, 1, 1).is_err());
    }
}
