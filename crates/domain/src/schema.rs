// @generated automatically by Diesel CLI.

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

diesel::joinable!(posts -> users (author_id));
diesel::joinable!(tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(posts, tokens, users,);
