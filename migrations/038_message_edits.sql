-- Edit history: an edit keeps the previous ciphertext, so clients (which alone can
-- decrypt it) can show what changed.

CREATE TABLE message_edits (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id           UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    previous_ciphertext  BYTEA NOT NULL,
    previous_nonce       BYTEA NOT NULL,
    edited_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT message_edits_ciphertext_size CHECK (octet_length(previous_ciphertext) <= 262144),
    CONSTRAINT message_edits_nonce_length CHECK (octet_length(previous_nonce) BETWEEN 12 AND 24)
);

CREATE INDEX message_edits_message_idx ON message_edits (message_id, edited_at);

ALTER TABLE messages
    ADD COLUMN edit_count INTEGER NOT NULL DEFAULT 0,
    ADD CONSTRAINT messages_edit_count_nonnegative CHECK (edit_count >= 0);
