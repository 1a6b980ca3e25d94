//! Rows and queries of groups, roles, memberships, join requests and notifications.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::schema::{groups, join_requests, memberships, notifications, role_permissions, roles, users};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    Internal,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Public, Self::Internal]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinMode {
    Open,
    Request,
    Invite,
}

impl JoinMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Request => "request",
            Self::Invite => "invite",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Request, Self::Invite]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = groups)]
pub struct Group {
    #[serde(skip)]
    pub id: i64,
    pub slug: String,
    #[serde(skip)]
    pub kind: String,
    pub title: String,
    #[serde(rename = "summary")]
    pub summary_source: String,
    pub summary_html: String,
    #[serde(skip)]
    pub parent_id: Option<i64>,
    visibility: String,
    join_mode: String,
    pub manually_approves_followers: bool,
    pub allow_remote_threads: bool,
    #[serde(serialize_with = "crate::db::utc::serialize")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::db::utc::serialize")]
    pub updated_at: NaiveDateTime,
    /// The actor id of a mirrored group on another server; None for our own groups.
    #[serde(skip)]
    pub ap_id: Option<String>,
    #[serde(skip)]
    pub remote_actor_id: Option<i64>,
}

impl Group {
    /// A mirror of a group on another server (read-only here, no actor of ours).
    pub fn is_remote(&self) -> bool {
        self.ap_id.is_some()
    }

    /// One of our groups that federates: public and local.
    pub fn federates(&self) -> bool {
        self.is_public() && !self.is_remote()
    }

    /// The group's ActivityPub id: ours, or the mirrored group's.
    pub fn actor_id(&self, urls: &crate::federation::Urls) -> String {
        self.ap_id.clone().unwrap_or_else(|| urls.group(&self.slug))
    }

    pub fn by_ap_id(conn: &mut DbConn, ap_id: &str) -> QueryResult<Option<Self>> {
        groups::table
            .filter(groups::ap_id.eq(ap_id))
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    /// An unknown value can only come from a hand-edited database: treat it as the closed one.
    pub fn visibility(&self) -> Visibility {
        Visibility::parse(&self.visibility).unwrap_or(Visibility::Internal)
    }

    pub fn join_mode(&self) -> JoinMode {
        JoinMode::parse(&self.join_mode).unwrap_or(JoinMode::Invite)
    }

    pub fn is_public(&self) -> bool {
        self.visibility() == Visibility::Public
    }

    pub fn by_slug(conn: &mut DbConn, slug: &str) -> QueryResult<Option<Self>> {
        groups::table
            .filter(groups::slug.eq(slug.trim().to_ascii_lowercase()))
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Self>> {
        groups::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    /// Every group, by title (the tree is built from this).
    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<Self>> {
        groups::table
            .order((groups::title, groups::id))
            .select(Self::as_select())
            .load(conn)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = groups)]
pub struct NewGroup<'a> {
    pub slug: &'a str,
    pub kind: &'a str,
    pub title: &'a str,
    pub summary_source: &'a str,
    pub summary_html: &'a str,
    pub parent_id: Option<i64>,
    pub visibility: &'a str,
    pub join_mode: &'a str,
    pub manually_approves_followers: bool,
    pub allow_remote_threads: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Role tokens in their display order.
pub fn role_tokens(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    roles::table
        .order(roles::position)
        .select(roles::token)
        .load(conn)
}

/// The permissions the given roles grant together.
pub fn permissions_of(conn: &mut DbConn, role_list: &[String]) -> QueryResult<Vec<String>> {
    role_permissions::table
        .filter(role_permissions::role.eq_any(role_list))
        .select(role_permissions::permission)
        .distinct()
        .load(conn)
}

/// The roles `user_id` holds in `group_id`, in display order.
pub fn roles_of(conn: &mut DbConn, group_id: i64, user_id: i64) -> QueryResult<Vec<String>> {
    memberships::table
        .inner_join(roles::table.on(roles::token.eq(memberships::role)))
        .filter(memberships::group_id.eq(group_id))
        .filter(memberships::user_id.eq(user_id))
        .order(roles::position)
        .select(memberships::role)
        .load(conn)
}

/// One member with their roles, for member lists.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub username: String,
    pub display_name: String,
    pub roles: Vec<String>,
}

pub fn members(conn: &mut DbConn, group_id: i64) -> QueryResult<Vec<Member>> {
    let rows: Vec<(String, String, String)> = memberships::table
        .inner_join(users::table)
        .inner_join(roles::table.on(roles::token.eq(memberships::role)))
        .filter(memberships::group_id.eq(group_id))
        .order((users::username, roles::position))
        .select((users::username, users::display_name, memberships::role))
        .load(conn)?;
    let mut out: Vec<Member> = Vec::new();
    for (username, display_name, role) in rows {
        match out.last_mut() {
            Some(m) if m.username == username => m.roles.push(role),
            _ => out.push(Member {
                username,
                display_name,
                roles: vec![role],
            }),
        }
    }
    Ok(out)
}

/// Members holding any role that grants `permission`.
pub fn members_with(conn: &mut DbConn, group_id: i64, permission: &str) -> QueryResult<Vec<String>> {
    memberships::table
        .inner_join(users::table)
        .inner_join(role_permissions::table.on(role_permissions::role.eq(memberships::role)))
        .filter(memberships::group_id.eq(group_id))
        .filter(role_permissions::permission.eq(permission))
        .select(users::username)
        .distinct()
        .order(users::username)
        .load(conn)
}

pub fn member_count(conn: &mut DbConn, group_id: i64) -> QueryResult<i64> {
    memberships::table
        .filter(memberships::group_id.eq(group_id))
        .select(diesel::dsl::count(memberships::user_id).aggregate_distinct())
        .get_result(conn)
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = join_requests)]
pub struct JoinRequest {
    pub id: i64,
    #[serde(skip)]
    pub group_id: i64,
    #[serde(skip)]
    pub user_id: i64,
    pub message: String,
    pub state: String,
    #[serde(serialize_with = "crate::db::utc::serialize")]
    pub created_at: NaiveDateTime,
    #[serde(skip)]
    pub decided_at: Option<NaiveDateTime>,
    #[serde(skip)]
    pub decided_by: Option<i64>,
}

/// Waiting join requests of a group with the requester's name.
pub fn pending_requests(conn: &mut DbConn, group_id: i64) -> QueryResult<Vec<(JoinRequest, String)>> {
    join_requests::table
        .inner_join(users::table.on(users::id.eq(join_requests::user_id)))
        .filter(join_requests::group_id.eq(group_id))
        .filter(join_requests::state.eq("pending"))
        .order(join_requests::id)
        .select((JoinRequest::as_select(), users::username))
        .load(conn)
}

pub fn pending_request_of(
    conn: &mut DbConn,
    group_id: i64,
    user_id: i64,
) -> QueryResult<Option<JoinRequest>> {
    join_requests::table
        .filter(join_requests::group_id.eq(group_id))
        .filter(join_requests::user_id.eq(user_id))
        .filter(join_requests::state.eq("pending"))
        .select(JoinRequest::as_select())
        .first(conn)
        .optional()
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = notifications)]
pub struct Notification {
    pub id: i64,
    #[serde(skip)]
    pub user_id: i64,
    pub kind: String,
    #[serde(skip)]
    pub args_json: String,
    pub link: String,
    #[serde(serialize_with = "crate::db::utc::serialize")]
    pub created_at: NaiveDateTime,
    #[serde(skip)]
    pub read_at: Option<NaiveDateTime>,
}

impl Notification {
    /// The translation arguments stored with it.
    pub fn args(&self) -> Vec<(String, String)> {
        serde_json::from_str::<Vec<(String, String)>>(&self.args_json).unwrap_or_default()
    }
}

/// Tells a local user something; `kind` is the translation key of the sentence.
pub fn notify(
    conn: &mut DbConn,
    user_id: i64,
    kind: &str,
    args: &[(&str, &str)],
    link: &str,
) -> QueryResult<()> {
    let args_json = serde_json::to_string(args).unwrap_or_else(|_| "[]".into());
    diesel::insert_into(notifications::table)
        .values((
            notifications::user_id.eq(user_id),
            notifications::kind.eq(kind),
            notifications::args_json.eq(args_json),
            notifications::link.eq(link),
            notifications::created_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn notifications_of(conn: &mut DbConn, user_id: i64, limit: i64) -> QueryResult<Vec<Notification>> {
    notifications::table
        .filter(notifications::user_id.eq(user_id))
        .order((notifications::created_at.desc(), notifications::id.desc()))
        .limit(limit)
        .select(Notification::as_select())
        .load(conn)
}

pub fn unread_count(conn: &mut DbConn, user_id: i64) -> QueryResult<i64> {
    notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(conn)
}

pub fn mark_read(conn: &mut DbConn, user_id: i64) -> QueryResult<usize> {
    diesel::update(
        notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(crate::db::now()))
    .execute(conn)
}

pub fn images(conn: &mut DbConn, group: &Group) -> QueryResult<crate::media::model::Images> {
    crate::media::model::images_of(conn, &group.slug)
}

/// An open invitation into a group, with the names pages and the API show.
#[derive(Debug, Clone, Serialize)]
pub struct Invitation {
    pub id: i64,
    #[serde(skip)]
    pub group_id: i64,
    pub group: String,
    pub group_title: String,
    pub username: String,
    pub role: String,
    pub invited_by: Option<String>,
    #[serde(serialize_with = "crate::db::utc::serialize")]
    pub created_at: NaiveDateTime,
}

/// id, group id, slug, title, invitee, role, inviter id, created.
type InvitationRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
    NaiveDateTime,
);

/// Open invitations into a group (`Some(group_id)`) or of a user (`None`, then `user_id`),
/// oldest first.
fn invitations_where(
    conn: &mut DbConn,
    group_id: Option<i64>,
    user_id: Option<i64>,
) -> QueryResult<Vec<Invitation>> {
    use crate::db::schema::invitations;
    let mut q = invitations::table
        .inner_join(groups::table)
        .inner_join(users::table.on(users::id.eq(invitations::user_id)))
        .select((
            invitations::id,
            invitations::group_id,
            groups::slug,
            groups::title,
            users::username,
            invitations::role,
            invitations::invited_by,
            invitations::created_at,
        ))
        .order(invitations::id)
        .into_boxed();
    if let Some(g) = group_id {
        q = q.filter(invitations::group_id.eq(g));
    }
    if let Some(u) = user_id {
        q = q.filter(invitations::user_id.eq(u));
    }
    let rows: Vec<InvitationRow> = q.load(conn)?;
    let inviter_ids: Vec<i64> = rows.iter().filter_map(|r| r.6).collect();
    let inviters: std::collections::HashMap<i64, String> = users::table
        .filter(users::id.eq_any(inviter_ids))
        .select((users::id, users::username))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(
            |(id, group_id, group, group_title, username, role, by, created_at)| Invitation {
                id,
                group_id,
                group,
                group_title,
                username,
                role,
                invited_by: by.and_then(|b| inviters.get(&b).cloned()),
                created_at,
            },
        )
        .collect())
}

pub fn invitations_to(conn: &mut DbConn, group_id: i64) -> QueryResult<Vec<Invitation>> {
    invitations_where(conn, Some(group_id), None)
}

pub fn invitations_of(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<Invitation>> {
    invitations_where(conn, None, Some(user_id))
}

/// The groups `username` is a member of, by title: (slug, title).
pub fn groups_of(conn: &mut DbConn, username: &str) -> QueryResult<Vec<(String, String)>> {
    groups::table
        .inner_join(memberships::table)
        .inner_join(users::table.on(users::id.eq(memberships::user_id)))
        .filter(users::username.eq(username))
        .select((groups::slug, groups::title))
        .distinct()
        .order(groups::title)
        .load(conn)
}

/// The ids of the groups `user_id` is a member of.
pub fn group_ids_of(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<i64>> {
    memberships::table
        .filter(memberships::user_id.eq(user_id))
        .select(memberships::group_id)
        .distinct()
        .load(conn)
}
