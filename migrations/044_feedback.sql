-- In-app feedback to the instance admins.

CREATE TABLE feedback (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SET NULL: feedback stays useful after its author's account is removed.
    user_id         UUID REFERENCES users (id) ON DELETE SET NULL,
    category        TEXT NOT NULL DEFAULT 'general',
    body            TEXT NOT NULL,
    client_version  TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at     TIMESTAMPTZ,
    CONSTRAINT feedback_category CHECK (category IN ('bug', 'feature', 'general')),
    CONSTRAINT feedback_body_length CHECK (char_length(body) BETWEEN 1 AND 5000)
);

CREATE INDEX feedback_open_idx ON feedback (created_at) WHERE resolved_at IS NULL;
CREATE INDEX feedback_user_id_idx ON feedback (user_id);
