-- Formal warnings from moderators: instance-wide (community_id NULL) or within a
-- community, optionally tied to the report that prompted them.

CREATE TABLE user_warnings (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    community_id     UUID REFERENCES communities (id) ON DELETE CASCADE,
    -- SET NULL: a warning stands after the moderator, or the report, is gone.
    issued_by        UUID REFERENCES users (id) ON DELETE SET NULL,
    report_id        UUID REFERENCES reports (id) ON DELETE SET NULL,
    reason           TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    acknowledged_at  TIMESTAMPTZ,
    CONSTRAINT user_warnings_reason_length CHECK (char_length(reason) BETWEEN 1 AND 2000)
);

CREATE INDEX user_warnings_user_created_idx ON user_warnings (user_id, created_at DESC);
CREATE INDEX user_warnings_community_id_idx ON user_warnings (community_id) WHERE community_id IS NOT NULL;
CREATE INDEX user_warnings_issued_by_idx ON user_warnings (issued_by);
CREATE INDEX user_warnings_report_id_idx ON user_warnings (report_id) WHERE report_id IS NOT NULL;
