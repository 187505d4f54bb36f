-- Slow mode: a per-channel cooldown between two messages of the same member.

ALTER TABLE channels
    ADD COLUMN slow_mode_seconds INTEGER NOT NULL DEFAULT 0,
    ADD CONSTRAINT channels_slow_mode_range CHECK (slow_mode_seconds BETWEEN 0 AND 21600);

-- When each member last posted, so the cooldown check is one primary-key lookup.
ALTER TABLE channel_members ADD COLUMN last_message_at TIMESTAMPTZ;
