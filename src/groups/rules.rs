//! The rules of groups: validation, who may do what, and every change (each in one transaction,
//! with its notifications and outgoing federation).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde::Serialize;

use super::model::{self, Group, JoinMode, NewGroup, Visibility};
use super::{Error, Result};
use crate::accounts::model::{Status, User};
use crate::db::schema::{groups, join_requests, memberships};
use crate::db::{DbConn, write_tx};

pub const MAX_TITLE: usize = 120;
pub const MAX_SUMMARY: usize = 5000;
/// programme → sub-project → work group → …; deeper trees are hard to navigate.
pub const MAX_DEPTH: usize = 6;
pub const MAX_JOIN_MESSAGE: usize = 1000;

/// What a role may do; the tokens stored in `role_permissions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Post,
    Moderate,
    ManageMembers,
    EditGroup,
    SeeInternalTickets,
    ViewContracts,
    ManageContracts,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "post",
            Self::Moderate => "moderate",
            Self::ManageMembers => "manage_members",
            Self::EditGroup => "edit_group",
            Self::SeeInternalTickets => "see_internal_tickets",
            Self::ViewContracts => "view_contracts",
            Self::ManageContracts => "manage_contracts",
        }
    }
}

/// What one user (or an anonymous visitor) may do in one group.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub admin: bool,
    pub roles: Vec<String>,
    permissions: HashSet<String>,
    public: bool,
    signed_in: bool,
}

impl Access {
    pub fn is_member(&self) -> bool {
        !self.roles.is_empty()
    }

    pub fn can(&self, p: Permission) -> bool {
        self.admin || self.permissions.contains(p.as_str())
    }

    /// Internal groups exist only for their members (and admins).
    pub fn can_read(&self) -> bool {
        self.public || self.is_member() || self.admin
    }

    /// Starting a thread: members whose role allows posting; in public groups that allow it,
    /// any signed-in user.
    pub fn can_start_thread(&self, group: &Group) -> bool {
        !group.is_remote()
            && (self.can(Permission::Post)
                || (self.signed_in && group.is_public() && group.allow_remote_threads))
    }

    /// Replying: members whose role allows posting; in public groups any signed-in user.
    pub fn can_reply(&self) -> bool {
        self.can(Permission::Post) || (self.signed_in && self.public)
    }
}

pub fn access(conn: &mut DbConn, group: &Group, user: Option<&User>) -> QueryResult<Access> {
    let mut a = Access {
        public: group.is_public(),
        ..Access::default()
    };
    let Some(user) = user.filter(|u| u.status() == Status::Active) else {
        return Ok(a);
    };
    a.signed_in = true;
    a.admin = user.is_admin();
    a.roles = model::roles_of(conn, group.id, user.id)?;
    a.permissions = model::permissions_of(conn, &a.roles)?.into_iter().collect();
    Ok(a)
}

/// The group `slug` as `user` may see it: internal groups are "not found" to non-members.
pub fn visible(conn: &mut DbConn, slug: &str, user: Option<&User>) -> Result<(Group, Access)> {
    let group = Group::by_slug(conn, slug)?.ok_or_else(|| Error::NotFound(slug.to_owned()))?;
    let access = access(conn, &group, user)?;
    if !access.can_read() {
        return Err(Error::NotFound(slug.to_owned()));
    }
    Ok((group, access))
}

pub fn validate_slug(raw: &str) -> Result<String> {
    crate::accounts::rules::validate_local_name("slug", raw).map_err(|e| match e {
        crate::accounts::Error::Invalid { key, args, .. } => Error::Invalid {
            field: "slug",
            key,
            args,
        },
        _ => Error::invalid("slug", "invalid-name-chars"),
    })
}

pub fn validate_title(raw: &str) -> Result<String> {
    title_within(raw, MAX_TITLE)
}

/// A one-line title: whitespace collapsed, not empty, at most `max` characters, no control or
/// bidirectional characters (they make text display differently from what it is). Threads use
/// it too, with their own limit.
pub fn title_within(raw: &str, max: usize) -> Result<String> {
    let title = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.is_empty() {
        return Err(Error::invalid("title", "invalid-title-empty"));
    }
    if title.chars().count() > max {
        return Err(Error::Invalid {
            field: "title",
            key: "invalid-title-long",
            args: vec![("max", max.to_string())],
        });
    }
    if title
        .chars()
        .any(|c| c.is_control() || crate::text::is_bidi_control(c))
    {
        return Err(Error::invalid("title", "invalid-title-control"));
    }
    Ok(title)
}

pub fn validate_summary(raw: &str) -> Result<String> {
    let summary = raw.trim().replace("\r\n", "\n");
    if summary.chars().count() > MAX_SUMMARY {
        return Err(Error::Invalid {
            field: "summary",
            key: "invalid-summary-long",
            args: vec![("max", MAX_SUMMARY.to_string())],
        });
    }
    Ok(summary)
}

/// What a group is made or changed with (validated by [`create`] and [`update`]).
#[derive(Debug, Clone)]
pub struct GroupInput {
    pub title: String,
    pub summary: String,
    pub parent: Option<String>,
    pub visibility: Visibility,
    pub join_mode: JoinMode,
    pub manually_approves_followers: bool,
    pub allow_remote_threads: bool,
}

impl GroupInput {
    /// The defaults for a new group: public, open, followers accepted, remote threads allowed.
    pub fn new(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            summary: String::new(),
            parent: None,
            visibility: Visibility::Public,
            join_mode: JoinMode::Open,
            manually_approves_followers: false,
            allow_remote_threads: true,
        }
    }
}

/// The parent's id; refuses unknown parents, cycles (`this` among the parent's ancestors) and
/// trees deeper than [`MAX_DEPTH`].
fn check_parent(conn: &mut DbConn, parent: Option<&str>, this: Option<i64>) -> Result<Option<i64>> {
    let Some(slug) = parent.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let parent = Group::by_slug(conn, slug)?.ok_or_else(|| Error::Invalid {
        field: "parent",
        key: "invalid-parent-unknown",
        args: vec![("name", slug.to_owned())],
    })?;
    let mut depth = 1;
    let mut cursor = Some(parent.clone());
    while let Some(g) = cursor {
        if Some(g.id) == this {
            return Err(Error::invalid("parent", "invalid-parent-cycle"));
        }
        depth += 1;
        if depth > MAX_DEPTH {
            return Err(Error::Invalid {
                field: "parent",
                key: "invalid-parent-depth",
                args: vec![("max", MAX_DEPTH.to_string())],
            });
        }
        cursor = match g.parent_id {
            Some(id) => Group::find(conn, id)?,
            None => None,
        };
    }
    Ok(Some(parent.id))
}

/// Creates a group with its actor key; `creator` (if any) becomes its lead.
pub fn create(conn: &mut DbConn, slug: &str, input: &GroupInput, creator: Option<&User>) -> Result<Group> {
    let slug = validate_slug(slug)?;
    let title = validate_title(&input.title)?;
    let summary = validate_summary(&input.summary)?;
    let summary_html = crate::text::render_markdown(&summary).html;
    let (public_key, private_key) =
        crate::federation::keys::generate().map_err(|e| Error::Key(e.to_string()))?;
    let now = crate::db::now();
    write_tx(conn, |conn| {
        let parent_id = check_parent(conn, input.parent.as_deref(), None)?;
        if !crate::accounts::model::claim_name(conn, &slug, "group", now)? {
            return Err(Error::SlugTaken(slug.clone()));
        }
        let group: Group = diesel::insert_into(groups::table)
            .values(&NewGroup {
                slug: &slug,
                kind: "project",
                title: &title,
                summary_source: &summary,
                summary_html: &summary_html,
                parent_id,
                visibility: input.visibility.as_str(),
                join_mode: input.join_mode.as_str(),
                manually_approves_followers: input.manually_approves_followers,
                allow_remote_threads: input.allow_remote_threads,
                created_at: now,
                updated_at: now,
            })
            .returning(groups::all_columns)
            .get_result(conn)?;
        crate::federation::keys::store(conn, &slug, &public_key, &private_key)?;
        if let Some(user) = creator {
            add_role_in(conn, &group, user.id, "lead")?;
        }
        Ok(group)
    })
}

/// Changes a group's settings (not its slug, which is fixed forever). Followers of a public
/// group get `Update{Group}`.
pub fn update(
    conn: &mut DbConn,
    urls: &crate::federation::Urls,
    group: &Group,
    input: &GroupInput,
) -> Result<Group> {
    if group.is_remote() {
        return Err(Error::Forbidden("error-group-remote"));
    }
    let title = validate_title(&input.title)?;
    let summary = validate_summary(&input.summary)?;
    let summary_html = crate::text::render_markdown(&summary).html;
    write_tx(conn, |conn| {
        let parent_id = check_parent(conn, input.parent.as_deref(), Some(group.id))?;
        let updated: Group = diesel::update(groups::table.find(group.id))
            .set((
                groups::title.eq(&title),
                groups::summary_source.eq(&summary),
                groups::summary_html.eq(&summary_html),
                groups::parent_id.eq(parent_id),
                groups::visibility.eq(input.visibility.as_str()),
                groups::join_mode.eq(input.join_mode.as_str()),
                groups::manually_approves_followers.eq(input.manually_approves_followers),
                groups::allow_remote_threads.eq(input.allow_remote_threads),
                groups::updated_at.eq(crate::db::now()),
            ))
            .returning(groups::all_columns)
            .get_result(conn)?;
        if group.manually_approves_followers && !updated.manually_approves_followers {
            for request in crate::federation::follows::pending(conn, &updated.slug)? {
                crate::federation::follows::decide(conn, urls, &updated.slug, request.id, true)?;
            }
        }
        if updated.federates() {
            super::actor::send_update(conn, urls, &updated)?;
        }
        Ok(updated)
    })
}

/// Sets or removes (`None`) a group's avatar or banner, and sends `Update{Group}` to its
/// followers, in one transaction.
pub fn set_image(
    conn: &mut DbConn,
    urls: &crate::federation::Urls,
    group: &Group,
    purpose: crate::media::Purpose,
    image: Option<&crate::media::Processed>,
) -> Result<Group> {
    if group.is_remote() {
        return Err(Error::Forbidden("error-group-remote"));
    }
    write_tx(conn, |conn| {
        let id = image.map(|i| crate::media::model::store(conn, i)).transpose()?;
        crate::media::model::set_image(conn, &group.slug, purpose, id)?;
        let updated: Group = groups::table.find(group.id).first(conn)?;
        if updated.federates() {
            super::actor::send_update(conn, urls, &updated)?;
        }
        Ok(updated)
    })
}

fn known_role(conn: &mut DbConn, role: &str) -> Result<String> {
    let role = role.trim().to_ascii_lowercase();
    if model::role_tokens(conn)?.contains(&role) {
        Ok(role)
    } else {
        Err(Error::UnknownRole(role))
    }
}

/// Gives `user_id` `role` in `group` (no-op if held); inside the caller's transaction.
fn add_role_in(conn: &mut DbConn, group: &Group, user_id: i64, role: &str) -> QueryResult<bool> {
    let row = (
        memberships::group_id.eq(group.id),
        memberships::user_id.eq(user_id),
        memberships::role.eq(role),
        memberships::created_at.eq(crate::db::now()),
    );
    let n = match conn {
        DbConn::Pg(c) => diesel::insert_into(memberships::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(memberships::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(n > 0)
}

/// Adds a member with a role (CLI, API, member management). Returns whether it was new.
pub fn add_member(conn: &mut DbConn, group: &Group, username: &str, role: &str) -> Result<bool> {
    if username.trim().is_empty() {
        return Err(Error::invalid("username", "invalid-member-username-empty"));
    }
    let role = known_role(conn, role)?;
    let user =
        User::by_username(conn, username)?.ok_or_else(|| Error::UserNotFound(username.trim().to_owned()))?;
    write_tx(conn, |conn| {
        let added = add_role_in(conn, group, user.id, &role)?;
        if added {
            model::notify(
                conn,
                user.id,
                "notification-role-added",
                &[("group", &group.title), ("role", &role)],
                &format!("/g/{}", group.slug),
            )?;
        }
        Ok(added)
    })
}

fn lead_count(conn: &mut DbConn, group_id: i64) -> QueryResult<i64> {
    memberships::table
        .filter(memberships::group_id.eq(group_id))
        .filter(memberships::role.eq("lead"))
        .count()
        .get_result(conn)
}

/// Takes a role away (or every role, with `role` None). A group keeps at least one lead.
pub fn remove_member(conn: &mut DbConn, group: &Group, username: &str, role: Option<&str>) -> Result<()> {
    let user =
        User::by_username(conn, username)?.ok_or_else(|| Error::UserNotFound(username.trim().to_owned()))?;
    let role = role.map(|r| known_role(conn, r)).transpose()?;
    write_tx(conn, |conn| {
        let held = model::roles_of(conn, group.id, user.id)?;
        if held.is_empty() {
            return Err(Error::NotMember);
        }
        let losing_lead = held.iter().any(|r| r == "lead") && role.as_deref().is_none_or(|r| r == "lead");
        if losing_lead && lead_count(conn, group.id)? <= 1 {
            return Err(Error::LastLead);
        }
        let mut q = diesel::delete(
            memberships::table
                .filter(memberships::group_id.eq(group.id))
                .filter(memberships::user_id.eq(user.id)),
        )
        .into_boxed();
        if let Some(r) = &role {
            q = q.filter(memberships::role.eq(r.clone()));
        }
        q.execute(conn)?;
        Ok(())
    })
}

/// What joining did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    Member,
    Requested,
}

/// Joins an open group at once; asks to join a `request` group (with a message for the leads);
/// invite-only groups cannot be joined.
pub fn join(conn: &mut DbConn, group: &Group, user: &User, message: &str) -> Result<Joined> {
    let message: String = message.trim().chars().take(MAX_JOIN_MESSAGE + 1).collect();
    if message.chars().count() > MAX_JOIN_MESSAGE {
        return Err(Error::Invalid {
            field: "message",
            key: "invalid-join-message-long",
            args: vec![("max", MAX_JOIN_MESSAGE.to_string())],
        });
    }
    write_tx(conn, |conn| {
        if !model::roles_of(conn, group.id, user.id)?.is_empty() {
            return Err(Error::AlreadyMember);
        }
        match group.join_mode() {
            JoinMode::Open => {
                add_role_in(conn, group, user.id, "member")?;
                Ok(Joined::Member)
            }
            JoinMode::Request => {
                if model::pending_request_of(conn, group.id, user.id)?.is_some() {
                    return Err(Error::RequestPending);
                }
                diesel::insert_into(join_requests::table)
                    .values((
                        join_requests::group_id.eq(group.id),
                        join_requests::user_id.eq(user.id),
                        join_requests::message.eq(&message),
                        join_requests::state.eq("pending"),
                        join_requests::created_at.eq(crate::db::now()),
                    ))
                    .execute(conn)?;
                for manager in model::members_with(conn, group.id, Permission::ManageMembers.as_str())? {
                    if let Some(m) = User::by_username(conn, &manager)? {
                        model::notify(
                            conn,
                            m.id,
                            "notification-join-request",
                            &[("name", &user.username), ("group", &group.title)],
                            &format!("/g/{}/members", group.slug),
                        )?;
                    }
                }
                Ok(Joined::Requested)
            }
            JoinMode::Invite => Err(Error::InviteOnly),
        }
    })
}

pub fn leave(conn: &mut DbConn, group: &Group, user: &User) -> Result<()> {
    remove_member(conn, group, &user.username, None)
}

/// Approves (member role) or refuses a join request; the requester is notified either way.
pub fn decide_request(
    conn: &mut DbConn,
    group: &Group,
    request_id: i64,
    approve: bool,
    by: &User,
) -> Result<()> {
    write_tx(conn, |conn| {
        let request: model::JoinRequest = join_requests::table
            .filter(join_requests::id.eq(request_id))
            .filter(join_requests::group_id.eq(group.id))
            .filter(join_requests::state.eq("pending"))
            .select(model::JoinRequest::as_select())
            .first(conn)
            .optional()?
            .ok_or(Error::RequestNotFound)?;
        diesel::update(join_requests::table.find(request.id))
            .set((
                join_requests::state.eq(if approve { "approved" } else { "refused" }),
                join_requests::decided_at.eq(crate::db::now()),
                join_requests::decided_by.eq(by.id),
            ))
            .execute(conn)?;
        if approve {
            add_role_in(conn, group, request.user_id, "member")?;
        }
        model::notify(
            conn,
            request.user_id,
            if approve {
                "notification-join-approved"
            } else {
                "notification-join-refused"
            },
            &[("group", &group.title)],
            &format!("/g/{}", group.slug),
        )?;
        Ok(())
    })
}

/// Invites `username` into `group` with `role` (the inviter needs manage_members; checked by
/// the caller). The user is told by a notification and accepts or declines.
pub fn invite(
    conn: &mut DbConn,
    group: &Group,
    username: &str,
    role: &str,
    by: &User,
) -> Result<model::Invitation> {
    use crate::db::schema::invitations;
    if group.is_remote() {
        return Err(Error::Forbidden("error-group-remote"));
    }
    if username.trim().is_empty() {
        return Err(Error::invalid("username", "invalid-member-username-empty"));
    }
    let role = known_role(conn, role)?;
    let user = User::by_username(conn, username)?
        .filter(|u| u.status() == Status::Active)
        .ok_or_else(|| Error::UserNotFound(username.trim().to_owned()))?;
    write_tx(conn, |conn| {
        if !model::roles_of(conn, group.id, user.id)?.is_empty() {
            return Err(Error::IsMember(user.username.clone()));
        }
        let open: i64 = invitations::table
            .filter(invitations::group_id.eq(group.id))
            .filter(invitations::user_id.eq(user.id))
            .count()
            .get_result(conn)?;
        if open > 0 {
            return Err(Error::AlreadyInvited(user.username.clone()));
        }
        diesel::insert_into(invitations::table)
            .values((
                invitations::group_id.eq(group.id),
                invitations::user_id.eq(user.id),
                invitations::role.eq(&role),
                invitations::invited_by.eq(by.id),
                invitations::created_at.eq(crate::db::now()),
            ))
            .execute(conn)?;
        model::notify(
            conn,
            user.id,
            "notification-invited",
            &[("name", &by.username), ("group", &group.title)],
            "/notifications",
        )?;
        model::invitations_to(conn, group.id)?
            .into_iter()
            .find(|i| i.username == user.username)
            .ok_or(Error::InvitationNotFound)
    })
}

/// The invited user accepts (joins with the invitation's role) or declines; whoever invited is
/// told. Returns the group.
pub fn answer_invitation(conn: &mut DbConn, user: &User, invitation_id: i64, accept: bool) -> Result<Group> {
    use crate::db::schema::invitations;
    write_tx(conn, |conn| {
        let row: Option<(i64, String, Option<i64>)> = invitations::table
            .filter(invitations::id.eq(invitation_id))
            .filter(invitations::user_id.eq(user.id))
            .select((invitations::group_id, invitations::role, invitations::invited_by))
            .first(conn)
            .optional()?;
        let (group_id, role, by) = row.ok_or(Error::InvitationNotFound)?;
        let group = Group::find(conn, group_id)?.ok_or(Error::InvitationNotFound)?;
        diesel::delete(invitations::table.find(invitation_id)).execute(conn)?;
        if accept {
            add_role_in(conn, &group, user.id, &role)?;
        }
        if let Some(by) = by {
            model::notify(
                conn,
                by,
                if accept {
                    "notification-invitation-accepted"
                } else {
                    "notification-invitation-declined"
                },
                &[("name", &user.username), ("group", &group.title)],
                &format!("/g/{}/members", group.slug),
            )?;
        }
        Ok(group)
    })
}

/// Withdraws an open invitation (manage_members, checked by the caller).
pub fn withdraw_invitation(conn: &mut DbConn, group: &Group, invitation_id: i64) -> Result<()> {
    use crate::db::schema::invitations;
    let n = diesel::delete(
        invitations::table
            .filter(invitations::id.eq(invitation_id))
            .filter(invitations::group_id.eq(group.id)),
    )
    .execute(conn)?;
    if n == 0 {
        return Err(Error::InvitationNotFound);
    }
    Ok(())
}

/// One node of the group tree as a page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TreeNode {
    pub group: Group,
    pub depth: usize,
    pub members: i64,
    pub threads: i64,
}

/// The groups `user` may see, depth first under their parents, with member and thread counts.
/// A group whose parent is hidden from the user is shown at the top level.
pub fn tree(conn: &mut DbConn, user: Option<&User>) -> QueryResult<Vec<TreeNode>> {
    use crate::db::schema::threads;
    let all = Group::all(conn)?;
    let member_of: HashSet<i64> = match user {
        Some(u) => model::group_ids_of(conn, u.id)?.into_iter().collect(),
        None => HashSet::new(),
    };
    let admin = user.is_some_and(User::is_admin);
    let visible: Vec<Group> = all
        .into_iter()
        .filter(|g| !g.is_remote() && (g.is_public() || admin || member_of.contains(&g.id)))
        .collect();
    let counts: HashMap<i64, i64> = memberships::table
        .group_by(memberships::group_id)
        .select((
            memberships::group_id,
            diesel::dsl::count(memberships::user_id).aggregate_distinct(),
        ))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let thread_counts: HashMap<i64, i64> = threads::table
        .filter(threads::deleted_at.is_null())
        .filter(threads::removed_at.is_null())
        .group_by(threads::group_id)
        .select((threads::group_id, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let ids: HashSet<i64> = visible.iter().map(|g| g.id).collect();
    let mut children: HashMap<Option<i64>, Vec<Group>> = HashMap::new();
    for g in visible {
        let parent = g.parent_id.filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(g);
    }
    let mut out = Vec::new();
    let mut stack: Vec<(Group, usize)> = children
        .remove(&None)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .map(|g| (g, 0))
        .collect();
    while let Some((g, depth)) = stack.pop() {
        if let Some(kids) = children.remove(&Some(g.id)) {
            stack.extend(kids.into_iter().rev().map(|k| (k, depth + 1)));
        }
        out.push(TreeNode {
            members: counts.get(&g.id).copied().unwrap_or(0),
            threads: thread_counts.get(&g.id).copied().unwrap_or(0),
            group: g,
            depth,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(validate_title("  Mobilität   2030 ").unwrap(), "Mobilität 2030");
        assert!(validate_title(" ").is_err());
        assert!(validate_title(&"x".repeat(121)).is_err());
        assert!(validate_title("Ver\u{202E}kehr").is_err());
    }

    #[test]
    fn slugs_follow_the_user_name_rules() {
        assert_eq!(validate_slug(" Verkehr_2030 ").unwrap(), "verkehr_2030");
        assert!(validate_slug("admin").is_err(), "reserved");
        assert!(validate_slug("ab").is_err());
        assert!(validate_slug("straße").is_err());
    }
}
