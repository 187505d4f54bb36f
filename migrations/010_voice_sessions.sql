-- Who is (or was) in which voice channel. The media itself goes peer-to-peer or
-- through the SFU; only presence is stored.

CREATE TABLE voice_sessions (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id  UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    left_at     TIMESTAMPTZ,
    muted       BOOLEAN NOT NULL DEFAULT false,
    deafened    BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT voice_sessions_left_after_joined CHECK (left_at IS NULL OR left_at >= joined_at)
);

-- A user is in at most one voice channel at a time.
CREATE UNIQUE INDEX voice_sessions_one_active_per_user ON voice_sessions (user_id) WHERE left_at IS NULL;
-- "Who is in this channel now".
CREATE INDEX voice_sessions_active_channel_idx ON voice_sessions (channel_id) WHERE left_at IS NULL;
