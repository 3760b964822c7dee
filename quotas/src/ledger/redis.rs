//! The Redis ledger: one quota per process shared by every engine instance
//! that points at the same Redis.
//!
//! Each process is one hash, `{prefix}:p:{id}`, with the fields of
//! [`PeriodState`] (`day seq r b f rd rr rb`) plus `meta` (the process
//! config as JSON); `{prefix}:processes` is the set of ids. Every state
//! change is one Lua script — reserve, refund, operator action — that reads
//! the hash, applies the rules of [`crate::state`] and writes it back.
//! Redis runs a script atomically, so instances on different machines are
//! linearized per process: zero over-grant across all of them, and each
//! transition (warned, exhausted, rolled over) is reported to exactly one
//! instance, so owners are notified once per cluster.
//!
//! Failures are typed: a refused, dropped or timed-out connection is
//! [`LedgerError::Unavailable`]; a reply that is not what the script returns,
//! a field that is not an integer, or a key of the wrong type is
//! [`LedgerError::Protocol`]. The script refuses (rather than zeroes) a
//! corrupt field. What a reserve does on either error is the process's
//! `on_backend_unavailable` policy, applied by [`crate::Quotas`].
//!
//! Durability is the Redis server's (RDB/AOF settings); for quota data that
//! must survive a Redis restart, run it with `appendonly yes`.
//!
//! Lua numbers are IEEE doubles: every value stays ≤ 2^48 (see
//! [`crate::MAX_AMOUNT`]) and is written back with `%.0f`, so arithmetic and
//! storage are exact.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use redis::{Client, Connection, RedisError, Script, Value};

use super::{Ledger, LedgerError};
use crate::config::ProcessConfig;
use crate::day::QuotaDay;
use crate::state::{
    Events, Operation, Period, PeriodState, ReserveOutcome, ReserveRequest, SlotSnapshot, Verdict,
    STOPPED, WARNED,
};
use crate::usage::{Dimension, Usage, MAX_AMOUNT};

/// Connection settings of a [`RedisLedger`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisOptions {
    /// Prefix of every key (lets several deployments share one Redis).
    pub key_prefix: String,
    /// Connect timeout; a reserve waits at most this long before the
    /// backend-failure policy applies.
    pub connect_timeout: Duration,
    /// Read/write timeout per command.
    pub io_timeout: Duration,
    /// Idle connections kept for reuse.
    pub max_idle_connections: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: "fusebox:quota".into(),
            connect_timeout: Duration::from_millis(500),
            io_timeout: Duration::from_millis(1000),
            max_idle_connections: 16,
        }
    }
}

/// Shared helpers of all scripts: strict field parsing and state rollover.
const PRELUDE: &str = r#"
local function num(x, field)
  if x == false or x == nil then return nil end
  local n = tonumber(x)
  if n == nil or n ~= math.floor(n) then
    error({err = 'FUSEBOX corrupt quota field ' .. field .. ' of ' .. KEYS[1] .. ': ' .. tostring(x)})
  end
  return n
end
local function s(x) return string.format('%.0f', x) end
local v = redis.call('HMGET', KEYS[1], 'day', 'seq', 'r', 'b', 'f', 'rd', 'rr', 'rb')
local st = {
  day = num(v[1], 'day') or -2147483648, seq = num(v[2], 'seq') or 0,
  r = num(v[3], 'r') or 0, b = num(v[4], 'b') or 0, f = num(v[5], 'f') or 0,
  rd = num(v[6], 'rd'), rr = num(v[7], 'rr'), rb = num(v[8], 'rb'),
}
if st.f < 0 or st.f > 3 or st.r < 0 or st.b < 0 then
  error({err = 'FUSEBOX corrupt quota state of ' .. KEYS[1]})
end
-- Every new period takes the next sequence number (u32, wrapping), never 0
-- again on a new day: a period's identity stays unique when a day repeats.
local function next_seq() return (st.seq + 1) % 4294967296 end
local rolled = 0
local function roll(day)
  if day > st.day then
    if bit.band(st.f, 2) ~= 0 then rolled = 1 end
    st.day = day; st.seq = next_seq(); st.r = 0; st.b = 0; st.f = 0
  end
  return st.day
end
local function save()
  redis.call('HSET', KEYS[1], 'day', s(st.day), 'seq', s(st.seq), 'r', s(st.r), 'b', s(st.b), 'f', s(st.f))
end
"#;

/// ARGV: day amount_r amount_b cap_r cap_b warn_r warn_b shadow(0/1) max
/// Returns: {verdict(0 granted,1 stopped,2 exceeded records,3 exceeded bytes),
///           day, seq, used_r, used_b, cap_r, cap_b, events}
const RESERVE: &str = r#"
local day = roll(tonumber(ARGV[1]))
local ar, ab = tonumber(ARGV[2]), tonumber(ARGV[3])
local cr, cb = tonumber(ARGV[4]), tonumber(ARGV[5])
local wr, wb = tonumber(ARGV[6]), tonumber(ARGV[7])
local shadow = ARGV[8] == '1'
local max = tonumber(ARGV[9])
local ev = rolled * 4
if st.rd == day and st.rr ~= nil and st.rb ~= nil then
  local function rescale(w, c, r)
    if c >= max or r >= max then return max end
    local x = math.ceil(r * (w / c))
    if x < 1 then x = 1 end
    if x > r then x = r end
    return x
  end
  if st.rr ~= cr or st.rb ~= cb then
    wr = rescale(wr, cr, st.rr); wb = rescale(wb, cb, st.rb)
  end
  cr = st.rr; cb = st.rb
end
local function reply(verdict)
  return {verdict, st.day, st.seq, st.r, st.b, cr, cb, ev}
end
if bit.band(st.f, 2) ~= 0 and not shadow then
  if rolled == 1 then save() end
  return reply(1)
end
local nr, nb = st.r + ar, st.b + ab
local exceeded = 0
if nr > cr then exceeded = 2 elseif nb > cb then exceeded = 3 end
if exceeded ~= 0 then
  if bit.band(st.f, 2) == 0 then st.f = st.f + 2; ev = ev + 2 end
  if not shadow then save(); return reply(exceeded) end
end
if nr > max then nr = max end
if nb > max then nb = max end
st.r = nr; st.b = nb
if bit.band(st.f, 1) == 0 and (st.r >= wr or st.b >= wb) then st.f = st.f + 1; ev = ev + 1 end
save()
return reply(0)
"#;

/// ARGV: day seq r b. Returns 1 if applied.
const REFUND: &str = r#"
if st.day ~= tonumber(ARGV[1]) or st.seq ~= tonumber(ARGV[2]) then return 0 end
st.r = math.max(0, st.r - tonumber(ARGV[3]))
st.b = math.max(0, st.b - tonumber(ARGV[4]))
save()
return 1
"#;

/// ARGV: op(1 raise, 2 resume, 3 reset, 4 set usage, 5 rewind) day r b
/// (r b: the caps of a raise, the usage of a set; day: the target of a rewind).
/// Returns {day, seq, r, b, f, rd or false, rr, rb}.
const OPERATE: &str = r#"
local op = ARGV[1]
local day = tonumber(ARGV[2])
if op ~= '5' then day = roll(day) end
if op == '5' then
  if day < st.day then
    if st.rd == st.day then
      st.rd = day
      redis.call('HSET', KEYS[1], 'rd', s(st.rd))
    end
    st.day = day; st.seq = next_seq()
  end
elseif op == '4' then
  st.seq = next_seq(); st.r = tonumber(ARGV[3]); st.b = tonumber(ARGV[4]); st.f = 0
elseif op == '1' then
  st.f = 0
  st.rd = day; st.rr = tonumber(ARGV[3]); st.rb = tonumber(ARGV[4])
  redis.call('HSET', KEYS[1], 'rd', s(st.rd), 'rr', s(st.rr), 'rb', s(st.rb))
elseif op == '2' then
  st.f = bit.band(st.f, 1)
else
  st.seq = next_seq(); st.r = 0; st.b = 0; st.f = 0
end
save()
return {st.day, st.seq, st.r, st.b, st.f, st.rd or -2147483648, st.rr or 0, st.rb or 0}
"#;

/// Reads the state without changing it. Returns the same shape as OPERATE.
const READ: &str = r#"
return {st.day, st.seq, st.r, st.b, st.f, st.rd or -2147483648, st.rr or 0, st.rb or 0}
"#;

struct Scripts {
    reserve: Script,
    refund: Script,
    operate: Script,
    read: Script,
}

/// A ledger in Redis, shared by several engine instances. See the module docs.
pub struct RedisLedger {
    client: Client,
    url_display: String,
    opts: RedisOptions,
    pool: Mutex<Vec<Connection>>,
    scripts: Scripts,
    keys: OnceLock<Vec<String>>,
    declared: OnceLock<Vec<ProcessConfig>>,
}

impl std::fmt::Debug for RedisLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLedger")
            .field("url", &self.url_display)
            .field("opts", &self.opts)
            .finish()
    }
}

fn map_err(e: RedisError) -> LedgerError {
    if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() || e.is_connection_dropped() {
        LedgerError::Unavailable(e.to_string())
    } else {
        LedgerError::Protocol(e.to_string())
    }
}

fn ints(v: Value, n: usize, what: &str) -> Result<Vec<i64>, LedgerError> {
    let items = match v {
        Value::Array(items) => items,
        other => {
            return Err(LedgerError::Protocol(format!(
                "{what}: expected an array, got {other:?}"
            )))
        }
    };
    if items.len() != n {
        return Err(LedgerError::Protocol(format!(
            "{what}: expected {n} values, got {}",
            items.len()
        )));
    }
    items
        .into_iter()
        .map(|x| match x {
            Value::Int(i) => Ok(i),
            other => Err(LedgerError::Protocol(format!(
                "{what}: expected an integer, got {other:?}"
            ))),
        })
        .collect()
}

fn amount(v: i64, what: &str) -> Result<u64, LedgerError> {
    u64::try_from(v)
        .ok()
        .filter(|x| *x <= MAX_AMOUNT)
        .ok_or_else(|| LedgerError::Protocol(format!("{what} out of range: {v}")))
}

fn day(v: i64) -> Result<QuotaDay, LedgerError> {
    i32::try_from(v)
        .map(QuotaDay::from_days_since_epoch)
        .map_err(|_| LedgerError::Protocol(format!("day out of range: {v}")))
}

/// Parses the `{day, seq, r, b, f, rd, rr, rb}` reply into a state.
fn parse_state(v: Value) -> Result<PeriodState, LedgerError> {
    let x = ints(v, 8, "quota state")?;
    let flags = u8::try_from(x[4])
        .ok()
        .filter(|f| f & !(WARNED | STOPPED) == 0)
        .ok_or_else(|| LedgerError::Protocol(format!("invalid flags {}", x[4])))?;
    let raised = if x[5] == i64::from(i32::MIN) {
        None
    } else {
        Some((
            day(x[5])?,
            Usage::new(
                amount(x[6], "raised records")?,
                amount(x[7], "raised bytes")?,
            ),
        ))
    };
    Ok(PeriodState {
        day: day(x[0])?,
        seq: u32::try_from(x[1])
            .map_err(|_| LedgerError::Protocol(format!("seq out of range: {}", x[1])))?,
        used: Usage::new(amount(x[2], "records")?, amount(x[3], "bytes")?),
        flags,
        raised,
    })
}

/// The reserve script's ARGV (kept in one place for single and batched calls).
fn reserve_args(pipe: &mut redis::Pipeline, req: &ReserveRequest) {
    pipe.arg(req.day.days_since_epoch())
        .arg(req.amount.records.min(MAX_AMOUNT + 1))
        .arg(req.amount.bytes.min(MAX_AMOUNT + 1))
        .arg(req.caps.records)
        .arg(req.caps.bytes)
        .arg(req.warn.records)
        .arg(req.warn.bytes)
        .arg(if req.shadow { "1" } else { "0" })
        .arg(MAX_AMOUNT);
}

/// Parses the reserve script's reply.
fn parse_reserve(v: Value) -> Result<ReserveOutcome, LedgerError> {
    let x = ints(v, 8, "reserve reply")?;
    let verdict = match x[0] {
        0 => Verdict::Granted,
        1 => Verdict::Stopped,
        2 => Verdict::Exceeded(Dimension::Records),
        3 => Verdict::Exceeded(Dimension::Bytes),
        other => return Err(LedgerError::Protocol(format!("unknown verdict {other}"))),
    };
    let events = u8::try_from(x[7])
        .ok()
        .filter(|e| *e < 8)
        .ok_or_else(|| LedgerError::Protocol(format!("invalid events {}", x[7])))?;
    Ok(ReserveOutcome {
        verdict,
        period: Period {
            day: day(x[1])?,
            token: u64::try_from(x[2])
                .map_err(|_| LedgerError::Protocol(format!("invalid seq {}", x[2])))?,
        },
        used: Usage::new(amount(x[3], "records")?, amount(x[4], "bytes")?),
        caps: Usage::new(amount(x[5], "cap records")?, amount(x[6], "cap bytes")?),
        events: Events(events),
    })
}

impl RedisLedger {
    /// A ledger on the Redis at `url` (e.g. `redis://127.0.0.1:6379/0`).
    /// Connects lazily: an unreachable server is reported per operation
    /// (use [`RedisLedger::ping`] to check eagerly).
    pub fn connect(url: &str, opts: RedisOptions) -> Result<RedisLedger, LedgerError> {
        let client = Client::open(url)
            .map_err(|e| LedgerError::Binding(format!("invalid Redis URL: {e}")))?;
        let url_display = match url.rsplit_once('@') {
            // Never echo credentials.
            Some((_, host)) => format!("redis://…@{host}"),
            None => url.to_string(),
        };
        Ok(RedisLedger {
            client,
            url_display,
            opts,
            pool: Mutex::new(Vec::new()),
            scripts: Scripts {
                reserve: Script::new(&format!("{PRELUDE}{RESERVE}")),
                refund: Script::new(&format!("{PRELUDE}{REFUND}")),
                operate: Script::new(&format!("{PRELUDE}{OPERATE}")),
                read: Script::new(&format!("{PRELUDE}{READ}")),
            },
            keys: OnceLock::new(),
            declared: OnceLock::new(),
        })
    }

    /// Checks that the server answers.
    pub fn ping(&self) -> Result<(), LedgerError> {
        self.with_conn(|c| redis::cmd("PING").query::<String>(c).map(|_| ()))
    }

    fn key(&self, id: &str) -> String {
        format!("{}:p:{id}", self.opts.key_prefix)
    }

    fn set_key(&self) -> String {
        format!("{}:processes", self.opts.key_prefix)
    }

    fn slot_key(&self, slot: u32) -> Result<&str, LedgerError> {
        let keys = self
            .keys
            .get()
            .ok_or_else(|| LedgerError::Binding("redis ledger used before bind".into()))?;
        keys.get(slot as usize)
            .map(String::as_str)
            .ok_or(LedgerError::NoSuchSlot(slot))
    }

    /// Runs `f` on a pooled connection; a connection that saw an error is
    /// discarded rather than reused.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, LedgerError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let c = self
                    .client
                    .get_connection_with_timeout(self.opts.connect_timeout)
                    .map_err(map_err)?;
                c.set_read_timeout(Some(self.opts.io_timeout))
                    .map_err(map_err)?;
                c.set_write_timeout(Some(self.opts.io_timeout))
                    .map_err(map_err)?;
                c
            }
        };
        let out = f(&mut conn).map_err(map_err)?;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.opts.max_idle_connections {
            pool.push(conn);
        }
        Ok(out)
    }

    fn read_state(&self, key: &str) -> Result<PeriodState, LedgerError> {
        let v: Value = self.with_conn(|c| self.scripts.read.key(key).invoke(c))?;
        parse_state(v)
    }
}

impl Ledger for RedisLedger {
    /// Stores each process's config (the latest engine to start wins) and
    /// registers its id. If Redis is unreachable the binding still succeeds
    /// (so fail-open processes can run); the configs are stored on the next
    /// successful bind.
    fn bind(&self, processes: &[ProcessConfig]) -> Result<(), LedgerError> {
        let keys: Vec<String> = processes.iter().map(|p| self.key(&p.id)).collect();
        let mut pipe = redis::pipe();
        for (p, k) in processes.iter().zip(&keys) {
            let meta =
                serde_json::to_string(p).map_err(|e| LedgerError::Protocol(e.to_string()))?;
            pipe.hset(k, "meta", meta).ignore();
            pipe.sadd(self.set_key(), &p.id).ignore();
        }
        match self.with_conn(|c| pipe.query::<()>(c)) {
            Ok(()) => {}
            Err(LedgerError::Unavailable(e)) => {
                tracing::warn!(error = %e, "redis unreachable at bind; process configs not stored yet");
            }
            Err(e) => return Err(e),
        }
        self.keys
            .set(keys)
            .map_err(|_| LedgerError::Binding("redis ledger bound twice".into()))?;
        let _ = self.declared.set(processes.to_vec());
        Ok(())
    }

    fn declared(&self) -> Result<Vec<ProcessConfig>, LedgerError> {
        let mut ids: Vec<String> =
            self.with_conn(|c| redis::cmd("SMEMBERS").arg(self.set_key()).query(c))?;
        ids.sort();
        ids.into_iter()
            .map(|id| {
                let key = self.key(&id);
                let meta: Option<String> =
                    self.with_conn(|c| redis::cmd("HGET").arg(&key).arg("meta").query(c))?;
                let meta = meta
                    .ok_or_else(|| LedgerError::Protocol(format!("{key} has no `meta` field")))?;
                serde_json::from_str(&meta).map_err(|e| {
                    LedgerError::Protocol(format!("{key} meta is not a process config: {e}"))
                })
            })
            .collect()
    }

    fn reserve(&self, slot: u32, req: &ReserveRequest) -> Result<ReserveOutcome, LedgerError> {
        let key = self.slot_key(slot)?;
        let v: Value = self.with_conn(|c| {
            let mut inv = self.scripts.reserve.key(key);
            inv.arg(req.day.days_since_epoch())
                .arg(req.amount.records.min(MAX_AMOUNT + 1))
                .arg(req.amount.bytes.min(MAX_AMOUNT + 1))
                .arg(req.caps.records)
                .arg(req.caps.bytes)
                .arg(req.warn.records)
                .arg(req.warn.bytes)
                .arg(if req.shadow { "1" } else { "0" })
                .arg(MAX_AMOUNT);
            inv.invoke(c)
        })?;
        parse_reserve(v)
    }

    /// One pipeline of `EVALSHA` calls: a single round trip for the batch.
    /// Redis runs the scripts one after another, in order.
    fn reserve_many(
        &self,
        reqs: &[(u32, ReserveRequest)],
    ) -> Vec<Result<ReserveOutcome, LedgerError>> {
        let mut out: Vec<Option<Result<ReserveOutcome, LedgerError>>> =
            Vec::with_capacity(reqs.len());
        let mut todo: Vec<(usize, &str, &ReserveRequest)> = Vec::new();
        for (i, (slot, req)) in reqs.iter().enumerate() {
            match self.slot_key(*slot) {
                Ok(key) => {
                    todo.push((i, key, req));
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        // Twice at most: the second pass follows a script (re)load after the
        // server answered NOSCRIPT (its script cache is empty after a restart).
        for pass in 0..2 {
            if todo.is_empty() {
                break;
            }
            let replies = self.with_conn(|c| {
                if pass == 1 {
                    self.scripts.reserve.prepare_invoke().load(c)?;
                }
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for (_, key, req) in &todo {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.reserve.get_hash())
                        .arg(1)
                        .arg(*key);
                    reserve_args(&mut pipe, req);
                }
                pipe.query::<Vec<redis::RedisResult<Value>>>(c)
            });
            let replies = match replies {
                Ok(r) if r.len() == todo.len() => r,
                Ok(r) => {
                    let msg = format!(
                        "pipeline returned {} replies for {} requests",
                        r.len(),
                        todo.len()
                    );
                    for (i, _, _) in todo.drain(..) {
                        out[i] = Some(Err(LedgerError::Protocol(msg.clone())));
                    }
                    break;
                }
                Err(e) => {
                    // Re-wrap the inner message, not the Display (which already carries the
                    // variant's prefix).
                    let (unavailable, msg) = match e {
                        LedgerError::Unavailable(m) => (true, m),
                        LedgerError::Protocol(m) => (false, m),
                        other => (false, other.to_string()),
                    };
                    for (i, _, _) in todo.drain(..) {
                        out[i] = Some(Err(if unavailable {
                            LedgerError::Unavailable(msg.clone())
                        } else {
                            LedgerError::Protocol(msg.clone())
                        }));
                    }
                    break;
                }
            };
            let mut retry = Vec::new();
            for ((i, key, req), reply) in todo.drain(..).zip(replies) {
                match reply {
                    Err(e) if e.code() == Some("NOSCRIPT") && pass == 0 => {
                        retry.push((i, key, req))
                    }
                    Err(e) => out[i] = Some(Err(map_err(e))),
                    Ok(v) => out[i] = Some(parse_reserve(v)),
                }
            }
            todo = retry;
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(LedgerError::Protocol("script not loadable".into()))))
            .collect()
    }

    fn refund(&self, slot: u32, period: Period, amount: Usage) -> Result<(), LedgerError> {
        let key = self.slot_key(slot)?;
        let v: Value = self.with_conn(|c| {
            self.scripts
                .refund
                .key(key)
                .arg(period.day.days_since_epoch())
                .arg(period.token)
                .arg(amount.records.min(MAX_AMOUNT + 1))
                .arg(amount.bytes.min(MAX_AMOUNT + 1))
                .invoke(c)
        })?;
        match v {
            Value::Int(0 | 1) => Ok(()),
            other => Err(LedgerError::Protocol(format!("refund reply: {other:?}"))),
        }
    }

    /// One pipeline of refund scripts. A refund is applied at most once:
    /// after NOSCRIPT only the refunds that did not run are sent again.
    fn refund_many(&self, refunds: &[(u32, Period, Usage)]) -> Result<(), LedgerError> {
        let mut todo = Vec::with_capacity(refunds.len());
        for (slot, period, amount) in refunds {
            todo.push((self.slot_key(*slot)?, *period, *amount));
        }
        for pass in 0..2 {
            if todo.is_empty() {
                return Ok(());
            }
            let replies = self.with_conn(|c| {
                if pass == 1 {
                    self.scripts.refund.prepare_invoke().load(c)?;
                }
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for (key, period, amount) in &todo {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.refund.get_hash())
                        .arg(1)
                        .arg(*key)
                        .arg(period.day.days_since_epoch())
                        .arg(period.token)
                        .arg(amount.records.min(MAX_AMOUNT + 1))
                        .arg(amount.bytes.min(MAX_AMOUNT + 1));
                }
                pipe.query::<Vec<redis::RedisResult<Value>>>(c)
            })?;
            if replies.len() != todo.len() {
                return Err(LedgerError::Protocol(format!(
                    "pipeline returned {} replies for {} refunds",
                    replies.len(),
                    todo.len()
                )));
            }
            let mut retry = Vec::new();
            for (item, reply) in todo.drain(..).zip(replies) {
                match reply {
                    Err(e) if e.code() == Some("NOSCRIPT") && pass == 0 => retry.push(item),
                    Err(e) => return Err(map_err(e)),
                    Ok(Value::Int(0 | 1)) => {}
                    Ok(other) => {
                        return Err(LedgerError::Protocol(format!("refund reply: {other:?}")))
                    }
                }
            }
            todo = retry;
        }
        if todo.is_empty() {
            Ok(())
        } else {
            Err(LedgerError::Protocol("refund script not loadable".into()))
        }
    }

    fn snapshot(&self, slot: u32, day: QuotaDay) -> Result<SlotSnapshot, LedgerError> {
        Ok(self.read_state(self.slot_key(slot)?)?.snapshot(day))
    }

    fn operate(
        &self,
        slot: u32,
        day: QuotaDay,
        op: Operation,
    ) -> Result<SlotSnapshot, LedgerError> {
        let key = self.slot_key(slot)?;
        let (code, day, amounts) = match op {
            Operation::Raise(caps) => ("1", day, caps),
            Operation::Resume => ("2", day, Usage::ZERO),
            Operation::Reset => ("3", day, Usage::ZERO),
            Operation::SetUsage(used) => ("4", day, used),
            Operation::Rewind(to) => ("5", to, Usage::ZERO),
        };
        let v: Value = self.with_conn(|c| {
            self.scripts
                .operate
                .key(key)
                .arg(code)
                .arg(day.days_since_epoch())
                .arg(amounts.records.min(MAX_AMOUNT))
                .arg(amounts.bytes.min(MAX_AMOUNT))
                .invoke(c)
        })?;
        let state = parse_state(v)?;
        Ok(state.snapshot(match op {
            Operation::Rewind(_) => state.day,
            _ => day.max(state.day),
        }))
    }

    fn describe(&self) -> String {
        self.url_display.clone()
    }
}
