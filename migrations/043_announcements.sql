-- Announcements: instance-wide (community_id NULL, from an admin) or for the
-- members of one community.

CREATE TABLE announcements (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id  UUID REFERENCES communities (id) ON DELETE CASCADE,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    -- SET NULL: an announcement stays up after its author's account is removed.
    created_by    UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ,
    CONSTRAINT announcements_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT announcements_body_length CHECK (char_length(body) BETWEEN 1 AND 10000),
    CONSTRAINT announcements_expiry_after_creation CHECK (expires_at IS NULL OR expires_at > created_at)
);

CREATE INDEX announcements_community_created_idx ON announcements (community_id, created_at DESC);
CREATE INDEX announcements_created_by_idx ON announcements (created_by);

CREATE TABLE announcement_dismissals (
    announcement_id  UUID NOT NULL REFERENCES announcements (id) ON DELETE CASCADE,
    user_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    dismissed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (announcement_id, user_id)
);

CREATE INDEX announcement_dismissals_user_id_idx ON announcement_dismissals (user_id);
