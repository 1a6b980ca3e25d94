//! Table definitions shared by both backends. Kept by hand (not `diesel print-schema`), because
//! the two backends report different native types for the same column; the parity test in
//! `tests/it/db.rs` checks that both migration trees produce what is declared here.

diesel::table! {
    local_names (name) {
        name -> Text,
        kind -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        display_name -> Text,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        status -> Text,
        must_change_password -> Bool,
        language -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        manually_approves_followers -> Bool,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> BigInt,
        csrf_token -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_failures (id) {
        id -> BigInt,
        username -> Text,
        ip -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    instance_settings (key) {
        key -> Text,
        value -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    jobs (id) {
        id -> BigInt,
        kind -> Text,
        payload -> Text,
        dedupe_key -> Nullable<Text>,
        run_at -> Timestamp,
        attempts -> Integer,
        max_attempts -> Integer,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        failed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(users -> local_names (username));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(api_tokens -> users (user_id));

diesel::table! {
    actor_keys (owner) {
        owner -> Text,
        public_key_pem -> Text,
        private_key_pem -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    remote_actors (id) {
        id -> BigInt,
        ap_id -> Text,
        domain -> Text,
        kind -> Text,
        preferred_username -> Nullable<Text>,
        name -> Nullable<Text>,
        inbox -> Nullable<Text>,
        shared_inbox -> Nullable<Text>,
        keys_json -> Text,
        fetched_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    received_activities (key) {
        key -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    followers (id) {
        id -> BigInt,
        local_name -> Text,
        actor_ap_id -> Text,
        inbox -> Text,
        follow_id -> Text,
        created_at -> Timestamp,
        shared_inbox -> Nullable<Text>,
        state -> Text,
    }
}

diesel::table! {
    following (id) {
        id -> BigInt,
        local_name -> Text,
        target_ap_id -> Text,
        target_inbox -> Text,
        follow_id -> Text,
        state -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    domain_blocks (domain) {
        domain -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    domain_allows (domain) {
        domain -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    outgoing_activities (id) {
        id -> BigInt,
        ap_id -> Text,
        owner -> Text,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    deliveries (id) {
        id -> BigInt,
        activity_id -> BigInt,
        inbox -> Text,
        host -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    instances (host) {
        host -> Text,
        failing_since -> Nullable<Timestamp>,
        last_success_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        paused_until -> Nullable<Timestamp>,
        dead -> Bool,
    }
}

diesel::joinable!(deliveries -> outgoing_activities (activity_id));

diesel::table! {
    groups (id) {
        id -> BigInt,
        slug -> Text,
        kind -> Text,
        title -> Text,
        summary_source -> Text,
        summary_html -> Text,
        parent_id -> Nullable<BigInt>,
        visibility -> Text,
        join_mode -> Text,
        manually_approves_followers -> Bool,
        allow_remote_threads -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        ap_id -> Nullable<Text>,
        remote_actor_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    media (id) {
        id -> BigInt,
        sha256 -> Text,
        content_type -> Text,
        width -> Integer,
        height -> Integer,
        data -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    invitations (id) {
        id -> BigInt,
        group_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
        invited_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    profile_images (owner, purpose) {
        owner -> Text,
        purpose -> Text,
        media_id -> BigInt,
    }
}

diesel::table! {
    roles (token) {
        token -> Text,
        position -> Integer,
    }
}

diesel::table! {
    role_permissions (role, permission) {
        role -> Text,
        permission -> Text,
    }
}

diesel::table! {
    memberships (id) {
        id -> BigInt,
        group_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    join_requests (id) {
        id -> BigInt,
        group_id -> BigInt,
        user_id -> BigInt,
        message -> Text,
        state -> Text,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
        decided_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        user_id -> BigInt,
        kind -> Text,
        args_json -> Text,
        link -> Text,
        created_at -> Timestamp,
        read_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    threads (id) {
        id -> BigInt,
        group_id -> BigInt,
        title -> Text,
        remote_context -> Nullable<Text>,
        pinned_at -> Nullable<Timestamp>,
        locked_at -> Nullable<Timestamp>,
        reply_count -> Integer,
        last_activity_at -> Timestamp,
        created_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        removed_at -> Nullable<Timestamp>,
        removed_reason -> Nullable<Text>,
    }
}

diesel::table! {
    posts (id) {
        id -> BigInt,
        thread_id -> BigInt,
        parent_id -> Nullable<BigInt>,
        ap_id -> Nullable<Text>,
        url -> Nullable<Text>,
        author_user_id -> Nullable<BigInt>,
        author_remote_id -> Nullable<BigInt>,
        source -> Nullable<Text>,
        content_html -> Text,
        depth -> Integer,
        like_count -> Integer,
        published_at -> Timestamp,
        updated_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        removed_at -> Nullable<Timestamp>,
        removed_reason -> Nullable<Text>,
    }
}

diesel::table! {
    post_revisions (id) {
        id -> BigInt,
        post_id -> BigInt,
        title -> Nullable<Text>,
        source -> Nullable<Text>,
        content_html -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    likes (id) {
        id -> BigInt,
        post_id -> BigInt,
        actor -> Text,
        ap_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    post_tags (post_id, kind, value) {
        post_id -> BigInt,
        kind -> Text,
        value -> Text,
    }
}

diesel::table! {
    moderation_log (id) {
        id -> BigInt,
        group_id -> BigInt,
        moderator_user_id -> Nullable<BigInt>,
        action -> Text,
        thread_id -> Nullable<BigInt>,
        post_id -> Nullable<BigInt>,
        reason -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(memberships -> groups (group_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(notifications -> users (user_id));
diesel::joinable!(role_permissions -> roles (role));
diesel::joinable!(threads -> groups (group_id));
diesel::joinable!(profile_images -> media (media_id));
diesel::joinable!(invitations -> groups (group_id));
diesel::joinable!(profile_images -> local_names (owner));
diesel::joinable!(posts -> threads (thread_id));
diesel::joinable!(posts -> remote_actors (author_remote_id));

diesel::allow_tables_to_appear_in_same_query!(
    outgoing_activities,
    deliveries,
    instances,
    local_names,
    users,
    sessions,
    api_tokens,
    login_failures,
    instance_settings,
    jobs,
    actor_keys,
    remote_actors,
    received_activities,
    followers,
    following,
    domain_blocks,
    domain_allows,
    groups,
    roles,
    role_permissions,
    memberships,
    join_requests,
    notifications,
    threads,
    posts,
    post_revisions,
    likes,
    post_tags,
    moderation_log,
    media,
    profile_images,
    invitations,
);
