//! Account rows and their queries. Functions take a connection and return `QueryResult`; the
//! checks that give these operations meaning live in `rules.rs`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConn;

diesel::define_sql_function! {
    /// SQL `lower()`, the same name on both backends (ASCII-only on SQLite).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}
use crate::db::schema::{api_tokens, local_names, login_failures, sessions, users};

/// Instance-wide role. Group roles (lead, moderator, …) are separate and live with the groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Staff,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Staff, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Staff => "staff",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase())
    }
}

/// Account state: `pending` waits for an admin's approval (registration mode `approval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Pending,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Pending, Self::Disabled]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub password_hash: String,
    role: String,
    status: String,
    pub must_change_password: bool,
    pub language: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
    /// Follow requests wait for the user's decision instead of being accepted at once.
    pub manually_approves_followers: bool,
}

impl User {
    /// An unknown value can only come from a hand-edited database; treat it as the least privilege.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Member)
    }

    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Disabled)
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Role::Admin
    }

    pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Self>> {
        users::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    /// Looks a user up by name, ignoring case (names are stored lower-case).
    pub fn by_username(conn: &mut DbConn, name: &str) -> QueryResult<Option<Self>> {
        users::table
            .filter(users::username.eq(name.trim().to_lowercase()))
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    /// Lists users by name; `query` filters on name, display name or e-mail, ignoring case.
    pub fn list(conn: &mut DbConn, query: Option<&str>, limit: i64) -> QueryResult<Vec<Self>> {
        let mut q = users::table
            .select(Self::as_select())
            .order(users::username)
            .limit(limit)
            .into_boxed();
        let term: String = query
            .unwrap_or_default()
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        if !term.is_empty() {
            // LIKE wildcards in the term are matched literally (user names contain `_`).
            let escaped = term
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            q = q.filter(
                lower(users::username)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(users::display_name).like(pattern.clone()).escape('\\'))
                    .or(lower(users::email).like(pattern).escape('\\')),
            );
        }
        q.load(conn)
    }

    /// Accounts that can log in (the figure pages and NodeInfo report).
    pub fn count_active(conn: &mut DbConn) -> QueryResult<i64> {
        users::table
            .filter(users::status.eq(Status::Active.as_str()))
            .count()
            .get_result(conn)
    }

    pub fn count_admins(conn: &mut DbConn) -> QueryResult<i64> {
        users::table
            .filter(users::role.eq(Role::Admin.as_str()))
            .filter(users::status.eq(Status::Active.as_str()))
            .count()
            .get_result(conn)
    }

    pub fn set_role(conn: &mut DbConn, id: i64, role: Role) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((
                users::role.eq(role.as_str()),
                users::updated_at.eq(crate::db::now()),
            ))
            .execute(conn)
    }

    pub fn set_status(conn: &mut DbConn, id: i64, status: Status) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((
                users::status.eq(status.as_str()),
                users::updated_at.eq(crate::db::now()),
            ))
            .execute(conn)
    }

    pub fn set_password(conn: &mut DbConn, id: i64, hash: &str, must_change: bool) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((
                users::password_hash.eq(hash),
                users::must_change_password.eq(must_change),
                users::updated_at.eq(crate::db::now()),
            ))
            .execute(conn)
    }

    pub fn touch_login(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set(users::last_login_at.eq(now))
            .execute(conn)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub status: &'a str,
    pub must_change_password: bool,
    pub language: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Claims a name in the shared user/group namespace; false if it is taken.
pub fn claim_name(conn: &mut DbConn, name: &str, kind: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let taken: i64 = local_names::table
        .filter(local_names::name.eq(name))
        .count()
        .get_result(conn)?;
    if taken > 0 {
        return Ok(false);
    }
    let row = (
        local_names::name.eq(name),
        local_names::kind.eq(kind),
        local_names::created_at.eq(now),
    );
    // ON CONFLICT rather than catching the unique violation: on PostgreSQL a violation would
    // abort the caller's transaction (two requests claiming one name at the same moment).
    let inserted = match conn {
        DbConn::Pg(c) => diesel::insert_into(local_names::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(local_names::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(inserted == 1)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: i64,
    pub token_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_id: i64,
    pub csrf_token: &'a str,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: i64,
    #[serde(skip)]
    pub user_id: i64,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    #[serde(serialize_with = "crate::db::utc::serialize")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::db::utc::option::serialize")]
    pub last_used_at: Option<NaiveDateTime>,
}

impl ApiToken {
    pub fn for_user(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<Self>> {
        api_tokens::table
            .filter(api_tokens::user_id.eq(user_id))
            .order(api_tokens::created_at.desc())
            .select(Self::as_select())
            .load(conn)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct NewApiToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub created_at: NaiveDateTime,
}

/// Failed logins since `since` for one account and for one client address.
pub fn failures_since(
    conn: &mut DbConn,
    username: &str,
    ip: &str,
    since: NaiveDateTime,
) -> QueryResult<(i64, i64)> {
    let recent = login_failures::table.filter(login_failures::created_at.gt(since));
    let by_user = recent
        .filter(login_failures::username.eq(username))
        .count()
        .get_result(conn)?;
    let by_ip = recent
        .filter(login_failures::ip.eq(ip))
        .count()
        .get_result(conn)?;
    Ok((by_user, by_ip))
}

pub fn record_failure(conn: &mut DbConn, username: &str, ip: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::username.eq(username),
            login_failures::ip.eq(ip),
            login_failures::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn clear_failures(conn: &mut DbConn, username: &str) -> QueryResult<()> {
    diesel::delete(login_failures::table.filter(login_failures::username.eq(username)))
        .execute(conn)
        .map(|_| ())
}

/// Deletes expired sessions and login failures older than `failures_before`.
pub fn purge_expired(
    conn: &mut DbConn,
    now: NaiveDateTime,
    failures_before: NaiveDateTime,
) -> QueryResult<(usize, usize)> {
    let s = diesel::delete(sessions::table.filter(sessions::expires_at.lt(now))).execute(conn)?;
    let f = diesel::delete(login_failures::table.filter(login_failures::created_at.lt(failures_before)))
        .execute(conn)?;
    Ok((s, f))
}
