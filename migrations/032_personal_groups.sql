-- A personal group is a user's private space (notes to self, drafts, files):
-- one per user, never inside a community, never listed in the directory.

ALTER TABLE groups
    ADD COLUMN is_personal BOOLEAN NOT NULL DEFAULT false,
    ADD CONSTRAINT groups_personal_standalone CHECK (NOT is_personal OR community_id IS NULL),
    ADD CONSTRAINT groups_personal_not_discoverable CHECK (NOT (is_personal AND discoverable));

CREATE UNIQUE INDEX groups_one_personal_per_owner ON groups (owner_id) WHERE is_personal;
