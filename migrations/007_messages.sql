-- Messages are end-to-end encrypted: the server stores ciphertext it cannot read,
-- plus the routing metadata it needs (channel, sender, time).

CREATE TABLE messages (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id    UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- SET NULL: the other members keep the conversation when the sender's account goes.
    sender_id     UUID REFERENCES users (id) ON DELETE SET NULL,
    ciphertext    BYTEA NOT NULL,
    nonce         BYTEA NOT NULL,
    message_type  TEXT NOT NULL DEFAULT 'text',
    -- SET NULL: a reply survives the hard deletion of the message it quoted.
    reply_to_id   UUID REFERENCES messages (id) ON DELETE SET NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    edited_at     TIMESTAMPTZ,
    deleted_at    TIMESTAMPTZ,
    CONSTRAINT messages_message_type CHECK (message_type IN ('text', 'file', 'system')),
    CONSTRAINT messages_ciphertext_size CHECK (octet_length(ciphertext) <= 262144),
    CONSTRAINT messages_nonce_length CHECK (octet_length(nonce) BETWEEN 12 AND 24)
);

-- History pagination: newest first within a channel, id breaks ties.
CREATE INDEX messages_channel_created_idx ON messages (channel_id, created_at DESC, id DESC);
-- Deleting a user nulls sender_id, which scans by sender.
CREATE INDEX messages_sender_id_idx ON messages (sender_id);
