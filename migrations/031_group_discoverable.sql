-- Standalone groups can opt in to the directory too.

ALTER TABLE groups ADD COLUMN discoverable BOOLEAN NOT NULL DEFAULT false;

CREATE INDEX groups_discoverable_name_idx ON groups (lower(name)) WHERE discoverable;
