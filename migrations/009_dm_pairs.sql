-- Direct messages are channels with exactly two members; this table finds "the DM
-- between A and B" in one lookup. The pair is stored ordered, so (A, B) and (B, A)
-- cannot both exist.

-- Allowed in a transaction block since PostgreSQL 12; the new label is not used
-- until a later migration (it cannot be used in the transaction that adds it).
ALTER TYPE channel_type ADD VALUE IF NOT EXISTS 'dm';

CREATE TABLE dm_pairs (
    -- CASCADE on either user: the pair row is only an index into the channel, which
    -- (with its history) stays for the other participant.
    user_a      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_b      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id  UUID NOT NULL UNIQUE REFERENCES channels (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_a, user_b),
    CONSTRAINT dm_pairs_ordered CHECK (user_a < user_b)
);

CREATE INDEX dm_pairs_user_b_idx ON dm_pairs (user_b);
