// @generated automatically by Diesel CLI.

diesel::table! {
    idempotency_keys (caller_id, key) {
        caller_id -> Text,
        key -> Text,
        fingerprint -> Text,
        status -> Integer,
        response -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    posts (id) {
        id -> BigInt,
        title -> Text,
        content -> Text,
        author_id -> Text,
        published_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    tokens (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        label -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        role -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(idempotency_keys -> users (caller_id));
diesel::joinable!(posts -> users (author_id));
diesel::joinable!(tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(idempotency_keys, posts, tokens, users,);
