-- Incoming webhooks post into a channel. A webhook is a server-side sender, so it
-- cannot take part in end-to-end encryption; the server allows webhooks only in
-- channels that are not end-to-end encrypted. Only a SHA-256 of the token is kept.

CREATE TABLE webhooks (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id    UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    avatar_url    TEXT,
    token_hash    BYTEA NOT NULL UNIQUE,
    -- SET NULL: integrations keep working after the member who set them up leaves.
    created_by    UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ,
    CONSTRAINT webhooks_name_length CHECK (char_length(name) BETWEEN 1 AND 80),
    CONSTRAINT webhooks_token_hash_length CHECK (octet_length(token_hash) = 32)
);

CREATE INDEX webhooks_channel_id_idx ON webhooks (channel_id);
CREATE INDEX webhooks_created_by_idx ON webhooks (created_by);

-- SET NULL: deleting a webhook keeps what it posted.
ALTER TABLE messages ADD COLUMN webhook_id UUID REFERENCES webhooks (id) ON DELETE SET NULL;
CREATE INDEX messages_webhook_id_idx ON messages (webhook_id) WHERE webhook_id IS NOT NULL;
