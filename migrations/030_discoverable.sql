-- Communities can opt in to the instance's public directory.

ALTER TABLE communities ADD COLUMN discoverable BOOLEAN NOT NULL DEFAULT false;

-- The directory lists and searches discoverable communities by name.
CREATE INDEX communities_discoverable_name_idx ON communities (lower(name)) WHERE discoverable;
