//! Accounts: users with a role and an argon2id password hash, their sessions (a random
//! 256-bit token, of which only the SHA-256 is stored, with idle and absolute expiry), and the
//! audit of reads of customer data (docs/store.md, "Accounts").

use crate::keys::{hex, sha256_hex};
use crate::{now_text, Store, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sqlx::Row;
use std::time::Duration;

/// How long a read's audit entry waits for others to be written with it.
pub const AUDIT_GATHER: Duration = Duration::from_millis(20);

/// Audit entries written by one statement at most (five values each).
const AUDIT_ROWS_PER_INSERT: usize = 500;

/// An audit entry queued to be written.
struct AuditRow {
    at: String,
    actor: String,
    method: String,
    path: String,
    status: u16,
}

/// The audit entries of this process not yet written ([`Store::audit`]).
#[derive(Default)]
pub(crate) struct AuditQueue {
    pending: std::sync::Mutex<Vec<AuditRow>>,
    /// Told when an entry is queued.
    queued: tokio::sync::Notify,
    /// Whether the task writing them runs.
    flushing: std::sync::atomic::AtomicBool,
}

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD: usize = 12;
/// Longest password accepted, in bytes (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD: usize = 1024;
/// Longest user name, in bytes.
pub const MAX_USER_NAME: usize = 64;

/// What a user or key may do; each role may do what the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads and dashboards.
    Viewer,
    /// Also quotes (without applying them) and saved dashboards.
    Analyst,
    /// Also writes to the book, imports, users and keys.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Analyst, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// `viewer`, `analyst` or `admin` (any case).
    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("{s:?}: expected a role: viewer, analyst or admin"))
    }

    /// A role read from the store (an unknown one is the least).
    pub(crate) fn stored(s: &str) -> Role {
        Role::parse(s).unwrap_or(Role::Viewer)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A user as listed (never the password's hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub disabled_at: Option<String>,
}

/// How long a session lives: `idle` since its last request, `absolute` since the login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle: Duration,
    pub absolute: Duration,
}

impl SessionLimits {
    /// Longest idle time allowed: 7 days.
    pub const MAX_IDLE: Duration = Duration::from_secs(7 * 86_400);
    /// Longest session allowed: 30 days.
    pub const MAX_ABSOLUTE: Duration = Duration::from_secs(30 * 86_400);
    /// 30 minutes idle, 12 hours in all.
    pub const DEFAULT: SessionLimits = SessionLimits {
        idle: Duration::from_secs(30 * 60),
        absolute: Duration::from_secs(12 * 3600),
    };
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits::DEFAULT
    }
}

/// A session found by its token: whose, and when it began (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user: User,
    pub created_unix: i64,
}

/// Most entries one listing of the audit gives (`expansa audit --limit`, `GET /api/v1/audit`).
pub const MAX_AUDIT_LIMIT: usize = 10_000;

/// Which audit entries to list: at or after `since`, of the user named `user` and/or the key
/// named `key`, the newest `limit` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    pub since: Option<jiff::Timestamp>,
    pub user: Option<String>,
    pub key: Option<String>,
    pub limit: usize,
}

/// One logged read of customer data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// A user name: 1 to 64 bytes of letters, digits and `.`, `_`, `-`, `@`.
pub fn check_user_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_USER_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "user name {:?}: 1 to {MAX_USER_NAME} letters, digits, '.', '_', '-' or '@'",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// A password: at least [`MIN_PASSWORD`] characters, at most [`MAX_PASSWORD`] bytes, not only
/// white space, no NUL.
/// The message never repeats it.
pub fn check_password(password: &str) -> Result<(), StoreError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD {
        return Err(StoreError::Invalid(format!(
            "the password has {chars} characters: at least {MIN_PASSWORD} are needed"
        )));
    }
    if password.len() > MAX_PASSWORD {
        return Err(StoreError::Invalid(format!(
            "the password has {} bytes: at most {MAX_PASSWORD}",
            password.len()
        )));
    }
    if password.trim().is_empty() {
        return Err(StoreError::Invalid(
            "the password is only spaces: choose one with other characters".into(),
        ));
    }
    if password.contains('\0') {
        return Err(StoreError::Invalid(
            "the password holds a NUL character (U+0000)".into(),
        ));
    }
    Ok(())
}

/// The argon2id hash (PHC string, random salt) of a checked password.
fn hash_password(password: &str) -> Result<String, StoreError> {
    check_password(password)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| StoreError::Invalid(format!("no randomness for a salt: {e}")))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| StoreError::Invalid(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Invalid(format!("cannot hash the password: {e}")))
}

/// Whether `password` matches the PHC string `stored`.
fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Runs argon2 off the async threads (it takes tens of milliseconds by design).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Invalid(format!("the password check failed: {e}")))
}

/// The hash of a random password no one has, verified when a login names no user.
async fn dummy_hash() -> Result<String, StoreError> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            let mut random = [0u8; 24];
            getrandom::fill(&mut random)
                .map_err(|e| StoreError::Invalid(format!("no randomness: {e}")))?;
            let password = hex(&random);
            blocking(move || hash_password(&password)).await?
        })
        .await
        .cloned()
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn user_from(r: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    Ok(User {
        name: r.try_get(0)?,
        role: Role::stored(&r.try_get::<String, _>(1)?),
        created_at: r.try_get(2)?,
        disabled_at: r.try_get(3)?,
    })
}

const USER_COLUMNS: &str = "name, role, created_at, disabled_at";

impl Store {
    /// Adds a user with `role` and `password` (hashed with argon2id).
    pub async fn add_user(&self, name: &str, role: Role, password: &str) -> Result<(), StoreError> {
        check_user_name(name)?;
        let password = password.to_string();
        let hashed = blocking(move || hash_password(&password)).await??;
        if self.user(name).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "user {name:?} exists already"
            )));
        }
        self.mark_written();
        sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(role.name())
        .bind(hashed)
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from).collect()
    }

    /// The user named `name`, if any.
    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        if name.contains('\0') {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// Runs `sql` (binding `$1` = the user's name and `$2` = `value`) on an existing user.
    async fn update_user(&self, name: &str, sql: &str, value: &str) -> Result<(), StoreError> {
        self.mark_written();
        let done = sqlx::query(sql)
            .bind(name)
            .bind(value)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user {name:?}")));
        }
        Ok(())
    }

    /// Gives a user another role (its sessions keep going, with the new role).
    pub async fn set_role(&self, name: &str, role: Role) -> Result<(), StoreError> {
        self.update_user(
            name,
            "UPDATE users SET role = $2 WHERE name = $1",
            role.name(),
        )
        .await
    }

    /// Disables a user: no login, and its sessions end at once. Enabling is `reset_password`.
    pub async fn disable_user(&self, name: &str) -> Result<(), StoreError> {
        self.update_user(
            name,
            "UPDATE users SET disabled_at = $2 WHERE name = $1",
            &now_text(),
        )
        .await?;
        self.end_sessions_of(name).await
    }

    /// Sets a new password (and enables a disabled user); the user's sessions end.
    pub async fn reset_password(&self, name: &str, password: &str) -> Result<(), StoreError> {
        let password = password.to_string();
        let hashed = blocking(move || hash_password(&password)).await??;
        self.update_user(
            name,
            "UPDATE users SET password_hash = $2, disabled_at = NULL WHERE name = $1",
            &hashed,
        )
        .await?;
        self.end_sessions_of(name).await
    }

    async fn end_sessions_of(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The enabled user `name` if `password` is theirs. An unknown name costs the same
    /// argon2 work as a wrong password, so the answer's time does not tell which it was.
    pub async fn verify_login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        if password.len() > MAX_PASSWORD || name.len() > MAX_USER_NAME {
            return Ok(None);
        }
        let found = if name.contains('\0') {
            None
        } else {
            sqlx::query(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE name = $1"
            ))
            .bind(name)
            .fetch_optional(self.pool())
            .await?
        };
        let (user, stored) = match &found {
            Some(r) => (Some(user_from(r)?), r.try_get::<String, _>(4)?),
            None => (None, dummy_hash().await?),
        };
        let password = password.to_string();
        let matches = blocking(move || verify_password(&password, &stored)).await?;
        Ok(user.filter(|u| matches && u.disabled_at.is_none()))
    }

    /// Starts a session for `user`; returns its token (64 hex digits), the only time it is seen.
    pub async fn create_session(&self, user: &str) -> Result<String, StoreError> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|e| StoreError::Invalid(format!("no randomness for a session: {e}")))?;
        let token = hex(&random);
        let now = now_unix();
        self.mark_written();
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_name, created_unix, seen_unix) VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256_hex(&token))
        .bind(user)
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(token)
    }

    /// The live session of `token`: its user enabled, used within `limits.idle` and begun within
    /// `limits.absolute`. A live session's last use is moved to now (at most once a second); an
    /// expired one is deleted.
    pub async fn session(
        &self,
        token: &str,
        limits: SessionLimits,
    ) -> Result<Option<Session>, StoreError> {
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let token_hash = sha256_hex(token);
        let row = sqlx::query(
            "SELECT u.name, u.role, u.created_at, u.disabled_at, s.created_unix, s.seen_unix \
             FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.token_hash = $1",
        )
        .bind(token_hash.as_str())
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let user = user_from(&r)?;
        let created: i64 = r.try_get(4)?;
        let seen: i64 = r.try_get(5)?;
        let now = now_unix();
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let live = user.disabled_at.is_none()
            && now.saturating_sub(seen) < secs(limits.idle)
            && now.saturating_sub(created) < secs(limits.absolute);
        if !live {
            self.end_session(token).await?;
            return Ok(None);
        }
        if now > seen {
            sqlx::query("UPDATE sessions SET seen_unix = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash.as_str())
                .execute(self.pool())
                .await?;
        }
        Ok(Some(Session {
            user,
            created_unix: created,
        }))
    }

    /// Ends the session of `token` (nothing when there is none).
    pub async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(sha256_hex(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Logs a read of customer data: who (`actor`), the request and its answer's status. The
    /// entry is queued and written within [`AUDIT_GATHER`] with the others queued meanwhile, in
    /// one statement committed with the writes of its moment ([`Store::write`]'s group
    /// commit): a read does not take the database's write lock of its own.
    pub async fn audit(
        &self,
        actor: &str,
        method: &str,
        path: &str,
        status: u16,
    ) -> Result<(), StoreError> {
        self.mark_written();
        let row = AuditRow {
            at: now_text(),
            actor: actor.to_string(),
            method: method.to_string(),
            path: path.replace('\0', "\u{FFFD}"),
            status,
        };
        let queue = &self.audits;
        queue
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(row);
        if !queue
            .flushing
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let store = self.clone();
            tokio::spawn(async move {
                loop {
                    store.audits.queued.notified().await;
                    tokio::time::sleep(AUDIT_GATHER).await;
                    if let Err(e) = store.flush_audit().await {
                        tracing::warn!("cannot log reads in the audit: {e}");
                    }
                }
            });
        }
        queue.queued.notify_one();
        Ok(())
    }

    /// Writes the queued audit entries (in the open batch of writes, or one of their own).
    pub(crate) async fn flush_audit(&self) -> Result<(), StoreError> {
        let rows = std::mem::take(
            &mut *self
                .audits
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for chunk in rows.chunks(AUDIT_ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let n = |k: usize| self.placeholder(5 * i + k);
                    format!("({}, {}, {}, {}, {})", n(1), n(2), n(3), n(4), n(5))
                })
                .collect();
            let sql = format!(
                "INSERT INTO audit (at, actor, method, path, status) VALUES {}",
                values.join(", ")
            );
            let mut member = self.join_batch().await?;
            let mut insert = sqlx::query(&sql);
            for row in chunk {
                insert = insert
                    .bind(row.at.as_str())
                    .bind(row.actor.as_str())
                    .bind(row.method.as_str())
                    .bind(row.path.as_str())
                    .bind(i64::from(row.status));
            }
            let result = insert
                .execute(&mut **member.tx())
                .await
                .map(|_| crate::batch::Finished {
                    answer: (),
                    keep: true,
                    live: None,
                    piece: None,
                });
            member.end(result.map_err(StoreError::from)).await?;
        }
        Ok(())
    }

    /// The audit log, newest first: at most `query.limit` entries (and never more than
    /// [`MAX_AUDIT_LIMIT`]) at or after `query.since`, of one user and/or one key (by name).
    pub async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        // This process's entries still queued are part of the log.
        self.flush_audit().await?;
        let limit = query.limit.min(MAX_AUDIT_LIMIT);
        // A user is logged as `user NAME`, a key as `NAME (ID)`: a user name has no space and
        // no parenthesis, so a user's entry never holds " (" and neither filter matches the
        // other kind.
        let rows = sqlx::query(
            "SELECT id, at, actor, method, path, status FROM audit \
             WHERE at >= $1 AND ($2 = '' OR actor = 'user ' || $2) \
             AND ($3 = '' OR substr(actor, 1, length(CAST($3 AS TEXT)) + 2) = $3 || ' (') \
             ORDER BY at DESC, id DESC LIMIT $4",
        )
        .bind(query.since.map(crate::time_text).unwrap_or_default())
        .bind(query.user.as_deref().unwrap_or(""))
        .bind(query.key.as_deref().unwrap_or(""))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    method: r.try_get(3)?,
                    path: r.try_get(4)?,
                    status: u16::try_from(r.try_get::<i64, _>(5)?).unwrap_or(0),
                })
            })
            .collect()
    }
}
