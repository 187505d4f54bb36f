-- User blocking, and reports to moderators.

CREATE TYPE report_status AS ENUM ('open', 'reviewing', 'resolved', 'dismissed');

CREATE TABLE user_blocks (
    blocker_id  UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id  UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CONSTRAINT user_blocks_not_self CHECK (blocker_id <> blocked_id)
);

-- "Who has blocked me", checked before delivering a DM.
CREATE INDEX user_blocks_blocked_id_idx ON user_blocks (blocked_id);

CREATE TABLE reports (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SET NULL throughout: a report is moderation evidence and outlives the accounts
    -- and the message it names.
    reporter_id       UUID REFERENCES users (id) ON DELETE SET NULL,
    reported_user_id  UUID REFERENCES users (id) ON DELETE SET NULL,
    message_id        UUID REFERENCES messages (id) ON DELETE SET NULL,
    -- The server cannot read an encrypted message; the reporter may attach the
    -- decrypted text they saw, knowingly.
    reported_content  TEXT,
    reason            TEXT NOT NULL,
    status            report_status NOT NULL DEFAULT 'open',
    reviewed_by       UUID REFERENCES users (id) ON DELETE SET NULL,
    reviewed_at       TIMESTAMPTZ,
    resolution_note   TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT reports_reason_length CHECK (char_length(reason) BETWEEN 1 AND 2000),
    CONSTRAINT reports_reported_content_length
        CHECK (reported_content IS NULL OR char_length(reported_content) <= 8000),
    -- Anything past 'open' has been picked up by a moderator at some time.
    CONSTRAINT reports_review_time CHECK ((status = 'open') = (reviewed_at IS NULL))
);

-- The moderation queue: oldest open reports first.
CREATE INDEX reports_status_created_idx ON reports (status, created_at);
CREATE INDEX reports_reported_user_id_idx ON reports (reported_user_id);
CREATE INDEX reports_message_id_idx ON reports (message_id) WHERE message_id IS NOT NULL;
-- Deleting an account sets these to NULL.
CREATE INDEX reports_reporter_id_idx ON reports (reporter_id);
CREATE INDEX reports_reviewed_by_idx ON reports (reviewed_by) WHERE reviewed_by IS NOT NULL;
