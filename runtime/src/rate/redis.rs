//! The shared rate store: GCRA in one atomic Lua script on Redis.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use shieldwall_runtime::rate::redis::RedisStore;
//! let store = RedisStore::new("redis://127.0.0.1:6379/")?;
//! # let _ = store; Ok(()) }
//! ```
//!
//! # Why the `redis` crate
//!
//! `redis` (redis-rs) is the most used Redis client in Rust, maintained by the Redis
//! project itself, and its `ConnectionManager` gives exactly what a limiter needs: one
//! multiplexed connection shared by every request, which reconnects by itself with
//! backoff, and per-call response timeouts. `fred` has more features (clusters, pools)
//! than one script call per request needs, and a larger dependency tree.
//!
//! # What runs on Redis
//!
//! One `EVALSHA` per limit check. The script reads Redis' own clock (`TIME`), so the
//! instances' clocks do not matter; reads the key's TAT, decides, and writes the new TAT
//! with `SET … PX` in the same atomic step — there is no INCR-then-EXPIRE window in which
//! a key can be left without a TTL. A key expires exactly when its TAT passes, that is when
//! its budget is whole again and forgetting it changes nothing.
//!
//! # Failure
//!
//! Every call is bounded by a timeout (default 200 ms); errors and timeouts are reported
//! to the caller, which applies the route's outage policy (see [`super::OnOutage`]). The
//! first failure after a healthy period is logged once, as is the recovery.
//!
//! # Recovery is exact from the first request
//!
//! When Redis restarts, the connection every instance holds is dead, and nothing says so
//! until a command is sent on it. The connection manager reconnects only once a command has
//! failed, so the requests that found the dead connection would be decided by the outage
//! policy although Redis answers again: two instances each applying their own local budget
//! once admitted 7 requests of a 5/min limit. Instead, a call whose command fails because
//! the connection is gone (an I/O error, a dropped or refused connection) is sent once more,
//! on the fresh connection the manager is making, *inside the same timeout*; only if that
//! fails too does the outage policy apply. A command that reached a dying server and whose
//! answer was lost may so be counted twice: that errs towards refusing, never towards
//! admitting. Server errors (a script error, `OOM`, `READONLY`) are not retried. The healthy
//! path is unchanged: one script call, no extra allocation or lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::Notify;

use super::{Decision, Quota, RateKey, StoreError};

/// Default bound on one Redis call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);

/// GCRA, atomically, on Redis' clock. Times in microseconds (exact in a double until 2255).
/// KEYS[1]: the bucket. ARGV[1]: emission interval, ARGV[2]: tolerance.
/// Returns {allowed, remaining, reset_us}. ARGV[3], never sent by the store itself, is a
/// test's clock: the property tests run this very script on a manual clock (`check_at`).
const SCRIPT: &str = r"
local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat ~= tat or tat < now then tat = now end
if tat > now + tolerance then
  -- No TAT this script writes runs further ahead (the value was edited or written by
  -- something else): a spent budget, whole again once the tolerance has passed.
  tat = now + tolerance
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil(tolerance / 1000) + 1)
end
local new_tat = tat + emission
local ahead = new_tat - now
if ahead <= tolerance then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(ahead / 1000))
  return {1, math.floor((tolerance - ahead) / emission), ahead}
end
return {0, 0, ahead - tolerance}
";

/// Give back one request: move the bucket's TAT back by one emission interval, atomically,
/// on Redis' clock; a TAT that falls to now or earlier means a full budget (the key is
/// deleted). KEYS[1]: the bucket. ARGV[1]: emission interval. ARGV[2]: a test's clock, as
/// in [`SCRIPT`].
const REFUND: &str = r"
local now
if ARGV[2] then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil then return 0 end
local back = tat - tonumber(ARGV[1])
if back <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], string.format('%d', back), 'PX', math.ceil((back - now) / 1000))
return 1
";
/// Run `$op` (an expression using `$conn: &mut ConnectionManager`) on the store's shared
/// connection, bounded by its timeout; when it fails because the connection is gone, run it
/// once more on the fresh connection the manager makes, inside the same timeout (see the
/// [module docs](self#recovery-is-exact-from-the-first-request)). A macro rather than a
/// function taking an async closure: the returned futures stay `Send` for every lifetime,
/// and nothing is boxed on the request path.
macro_rules! retrying {
    ($store:expr, |$conn:ident| $op:expr) => {{
        let store = $store;
        let work = async {
            let mut conn = store.conn().await?;
            let first = {
                let $conn = &mut conn;
                $op
            };
            match first {
                Ok(v) => Ok(v),
                Err(e) if connection_lost(&e) => {
                    // The manager swapped in a new connection when the command failed:
                    // this waits for it.
                    let mut conn = store.conn().await?;
                    let $conn = &mut conn;
                    $op.map_err(|_| StoreError::Unavailable)
                }
                Err(_) => Err(StoreError::Unavailable),
            }
        };
        tokio::time::timeout(store.inner.timeout, work)
            .await
            .map_err(|_| StoreError::Timeout)?
    }};
}

/// Whether a command failed because the connection is gone (Redis restarted, or the
/// connection was never made), rather than because the server refused it.
fn connection_lost(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// A Redis-backed GCRA store shared by every instance of the app.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: OnceLock<ConnectionManager>,
    connecting: AtomicBool,
    ready: Notify,
    script: redis::Script,
    timeout: Duration,
    prefix: String,
    /// `host:port` of the server, for logs (never the password).
    addr: String,
    down: AtomicBool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("timeout", &self.inner.timeout)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `url` (`redis://host:port/db`). The connection is made in the
    /// background on first use, so an app starts even while Redis is down (and applies its
    /// outage policy until Redis is reachable); once made, it reconnects by itself.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|_| StoreError::BadUrl)?;
        let addr = client.get_connection_info().addr().to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                conn: OnceLock::new(),
                connecting: AtomicBool::new(false),
                ready: Notify::new(),
                script: redis::Script::new(SCRIPT),
                timeout: DEFAULT_TIMEOUT,
                prefix: "shieldwall:rl:".into(),
                addr,
                down: AtomicBool::new(false),
            }),
        })
    }

    /// Bound on each check, connection wait included (default 200 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.timeout = timeout;
        }
        self
    }

    /// Key prefix (default `shieldwall:rl:`), to share one Redis between apps.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.prefix = prefix.into();
        }
        self
    }

    /// Start connecting in the background (idempotent). Needs a tokio runtime.
    pub fn connect_in_background(&self) {
        if self.inner.conn.get().is_some() || self.inner.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(inner.timeout))
                .set_response_timeout(Some(inner.timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(1));
            let mut delay = Duration::from_millis(50);
            loop {
                let attempt = tokio::time::timeout(
                    Duration::from_secs(5),
                    ConnectionManager::new_with_config(inner.client.clone(), config.clone()),
                )
                .await;
                if let Ok(Ok(conn)) = attempt {
                    let _ = inner.conn.set(conn);
                    inner.ready.notify_waiters();
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        });
    }

    /// The connection, waiting for the first one to be made (bounded by the caller).
    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(c) = self.inner.conn.get() {
            return Ok(c.clone());
        }
        self.connect_in_background();
        let notified = self.inner.ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(c) = self.inner.conn.get() {
            return Ok(c.clone());
        }
        notified.await;
        self.inner
            .conn
            .get()
            .cloned()
            .ok_or(StoreError::Unavailable)
    }

    /// `PING`, bounded by the timeout (readiness checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.query::<String>(redis::cmd("PING")).await.map(|_| ())
    }

    /// Run one command on the shared connection, bounded by the timeout.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, StoreError> {
        retrying!(self, |conn| cmd.query_async::<T>(conn).await)
    }

    /// Run a script invocation on the shared connection, bounded by the timeout.
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        retrying!(self, |conn| inv.invoke_async::<T>(conn).await)
    }

    /// Redis key of a bucket: prefix, the limit's scope (`POST /users#0`), the identity.
    pub fn key(&self, scope: &str, key: &RateKey) -> String {
        let mut s = String::with_capacity(self.inner.prefix.len() + scope.len() + 48);
        s.push_str(&self.inner.prefix);
        s.push_str(scope);
        s.push(':');
        match &key.ident {
            super::Ident::Global => s.push('*'),
            super::Ident::Ip(ip) => {
                s.push_str("ip:");
                s.push_str(&ip.to_string());
            }
            // One prefix per kind, before the client-controlled part: no value can
            // produce another kind's key. An IP's text never contains '/'.
            super::Ident::Subject(sub) => {
                s.push_str("sub:");
                s.push_str(sub);
            }
            super::Ident::ApiKey(id) => {
                s.push_str("key:");
                s.push_str(id);
            }
            super::Ident::KeyOwner(owner) => {
                s.push_str("own:");
                s.push_str(owner);
            }
            super::Ident::Username(name) => {
                s.push_str("usr:");
                s.push_str(name);
            }
            super::Ident::UsernameFrom(name, ip) => {
                s.push_str("uip:");
                s.push_str(&ip.to_string());
                s.push('/');
                s.push_str(name);
            }
        }
        s
    }

    /// Check and charge one request against the bucket `scope` + `key.ident`.
    pub async fn check(
        &self,
        scope: &str,
        key: &RateKey,
        quota: &Quota,
    ) -> Result<Decision, StoreError> {
        let result = self.call(scope, key, quota, None).await;
        match &result {
            Ok(_) => {
                if self.inner.down.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "shieldwall::rate",
                        store = "redis",
                        addr = %self.inner.addr,
                        "rate store recovered"
                    );
                }
            }
            Err(e) => {
                if !self.inner.down.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        target: "shieldwall::rate",
                        store = "redis",
                        addr = %self.inner.addr,
                        error = %e,
                        "rate store outage: applying each route's outage policy until it recovers"
                    );
                }
            }
        }
        result
    }

    /// Give back one request admitted by [`RedisStore::check`] on the same bucket (see
    /// [`super::RateStore::refund`]). One atomic script, bounded by the timeout.
    pub async fn refund(
        &self,
        scope: &str,
        key: &RateKey,
        quota: &Quota,
    ) -> Result<(), StoreError> {
        self.refund_on(scope, key, quota, None).await
    }

    async fn refund_on(
        &self,
        scope: &str,
        key: &RateKey,
        quota: &Quota,
        now_us: Option<u64>,
    ) -> Result<(), StoreError> {
        let emission_us = (quota.emission / 1_000).max(1);
        let script = redis::Script::new(REFUND);
        let mut inv = script.key(self.key(scope, key));
        inv.arg(emission_us);
        if let Some(now) = now_us {
            inv.arg(now);
        }
        self.invoke::<i64>(inv).await.map(|_| ())
    }

    /// [`RedisStore::check`] with the script reading `now_us` instead of Redis' clock.
    #[cfg(test)]
    pub(crate) async fn check_at(
        &self,
        scope: &str,
        key: &RateKey,
        quota: &Quota,
        now_us: u64,
    ) -> Result<Decision, StoreError> {
        self.call(scope, key, quota, Some(now_us)).await
    }

    /// [`RedisStore::refund`] with the script reading `now_us` instead of Redis' clock.
    #[cfg(test)]
    pub(crate) async fn refund_at(
        &self,
        scope: &str,
        key: &RateKey,
        quota: &Quota,
        now_us: u64,
    ) -> Result<(), StoreError> {
        self.refund_on(scope, key, quota, Some(now_us)).await
    }

    async fn call(
        &self,
        scope: &str,
        key: &RateKey,
        quota: &Quota,
        now_us: Option<u64>,
    ) -> Result<Decision, StoreError> {
        let emission_us = (quota.emission / 1_000).max(1);
        let tolerance_us = quota.tolerance / 1_000;
        let mut invocation = self.inner.script.key(self.key(scope, key));
        invocation.arg(emission_us).arg(tolerance_us);
        if let Some(now) = now_us {
            invocation.arg(now);
        }
        let (allowed, remaining, reset_us) = retrying!(self, |conn| {
            invocation.invoke_async::<(i64, i64, i64)>(conn).await
        })?;
        let reset_us = u64::try_from(reset_us.max(0)).unwrap_or(0);
        Ok(Decision {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            reset_secs: if allowed == 1 {
                reset_us.div_ceil(1_000_000)
            } else {
                reset_us.div_ceil(1_000_000).max(1)
            },
        })
    }
}
