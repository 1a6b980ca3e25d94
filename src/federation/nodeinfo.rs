//! NodeInfo 2.0 and 2.1: what software this is and how much it is used.

use chrono::TimeDelta;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::config::Registration;
use crate::db::DbConn;
use crate::db::schema::users;
use crate::instance::InstanceSettings;

/// Active accounts in total, and those that logged in within a month and within half a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub total: i64,
    pub active_month: i64,
    pub active_halfyear: i64,
}

pub fn usage(conn: &mut DbConn, now: chrono::NaiveDateTime) -> QueryResult<Usage> {
    let active = users::table.filter(users::status.eq(crate::accounts::Status::Active.as_str()));
    let since = |days| users::last_login_at.gt(now - TimeDelta::days(days));
    Ok(Usage {
        total: crate::accounts::model::User::count_active(conn)?,
        active_month: active.filter(since(30)).count().get_result(conn)?,
        active_halfyear: active.filter(since(180)).count().get_result(conn)?,
    })
}

/// The NodeInfo document for schema `version` ("2.0" or "2.1").
pub fn document(version: &str, usage: Usage, settings: &InstanceSettings) -> Value {
    let mut software = json!({ "name": "agora", "version": env!("CARGO_PKG_VERSION") });
    if version == "2.1"
        && let Some(obj) = software.as_object_mut()
    {
        obj.insert(
            "homepage".into(),
            json!("https://www.gnu.org/licenses/agpl-3.0.html"),
        );
    }
    json!({
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": { "inbound": [], "outbound": [] },
        // Registration with approval is open to anyone, as Mastodon reports it.
        "openRegistrations": settings.registration != Registration::Closed,
        "usage": {
            "users": {
                "total": usage.total,
                "activeMonth": usage.active_month,
                "activeHalfyear": usage.active_halfyear,
            },
            // Threads, replies and blog posts come with their features.
            "localPosts": 0,
            "localComments": 0,
        },
        "metadata": {
            "nodeName": settings.name,
            "nodeDescription": settings.description,
            "approvalRequired": settings.registration == Registration::Approval,
        },
    })
}
