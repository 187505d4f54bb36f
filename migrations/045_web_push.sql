-- Web Push subscriptions (RFC 8030 / RFC 8291). Notifications carry no message
-- content, only "something arrived in channel X": the server has no plaintext.

CREATE TABLE push_subscriptions (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint      TEXT NOT NULL UNIQUE,
    -- The browser's P-256 public key (uncompressed point) and auth secret.
    p256dh        BYTEA NOT NULL,
    auth_secret   BYTEA NOT NULL,
    user_agent    TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ,
    CONSTRAINT push_subscriptions_endpoint_https CHECK (endpoint ~ '^https://'),
    CONSTRAINT push_subscriptions_p256dh_length CHECK (octet_length(p256dh) = 65),
    CONSTRAINT push_subscriptions_auth_secret_length CHECK (octet_length(auth_secret) = 16)
);

CREATE INDEX push_subscriptions_user_id_idx ON push_subscriptions (user_id);
