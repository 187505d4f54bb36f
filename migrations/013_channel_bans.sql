-- Bans from a single channel (group- and community-wide moderation comes later).

CREATE TABLE channel_bans (
    channel_id  UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SET NULL: the ban stands after the moderator who issued it leaves.
    banned_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    reason      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ,
    PRIMARY KEY (channel_id, user_id),
    CONSTRAINT channel_bans_reason_length CHECK (reason IS NULL OR char_length(reason) <= 512),
    CONSTRAINT channel_bans_expiry_after_creation CHECK (expires_at IS NULL OR expires_at > created_at)
);

CREATE INDEX channel_bans_user_id_idx ON channel_bans (user_id);
