-- Reactions are plaintext metadata (an emoji and who chose it); the message they
-- point at stays encrypted.

CREATE TABLE reactions (
    message_id  UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id, emoji),
    CONSTRAINT reactions_emoji_length CHECK (char_length(emoji) BETWEEN 1 AND 64)
);

CREATE INDEX reactions_user_id_idx ON reactions (user_id);
