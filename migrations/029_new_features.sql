-- Profile bio and custom status; disappearing messages.

ALTER TABLE users
    ADD COLUMN bio TEXT,
    ADD COLUMN custom_status TEXT,
    ADD COLUMN custom_status_expires_at TIMESTAMPTZ,
    ADD CONSTRAINT users_bio_length CHECK (bio IS NULL OR char_length(bio) <= 500),
    ADD CONSTRAINT users_custom_status_length
        CHECK (custom_status IS NULL OR char_length(custom_status) <= 128);

-- A channel may set a lifetime for new messages; each message records its own
-- expiry, so changing the setting does not rewrite history.
ALTER TABLE channels
    ADD COLUMN message_ttl_seconds INTEGER,
    ADD CONSTRAINT channels_message_ttl_range
        CHECK (message_ttl_seconds IS NULL OR message_ttl_seconds BETWEEN 30 AND 31536000);

ALTER TABLE messages ADD COLUMN expires_at TIMESTAMPTZ;

-- The reaper deletes expired messages in expiry order.
CREATE INDEX messages_expires_at_idx ON messages (expires_at) WHERE expires_at IS NOT NULL;
